//! Portico's data plane.
//!
//! - [`pipeline`]: one config version assembled for serving (routes, verifiers), swapped
//!   atomically on reload.
//! - [`admission`]: what a verified token means for an API, and the cache of it.
//! - [`stages`]: the small steps of the request path (token, policies, headers).
//! - [`proxy`]: forwarding to upstreams.
//! - [`tls`]: TLS building blocks: listener certificates (reloadable) and upstream TLS.
//! - [`server`]: listeners and [`Gateway::handle`], which runs the stages in order.
//! - [`error`]: the one mapping from rejections to HTTP responses.
//! - [`metrics`]: Prometheus metrics.

pub mod admission;
pub mod body;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod proxy;
pub mod server;
pub mod stages;
pub mod tls;

pub use server::Gateway;
