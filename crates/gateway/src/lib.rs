//! Portico's data plane.
//!
//! - [`pipeline`]: one config version assembled for serving (routes, verifiers), swapped
//!   atomically on reload.
//! - [`stages`]: the small steps of the request path (token, policies, headers).
//! - [`proxy`]: forwarding to upstreams.
//! - [`server`]: listeners and [`Gateway::handle`], which runs the stages in order.
//! - [`error`]: the one mapping from rejections to HTTP responses.
//! - [`metrics`]: Prometheus metrics.

pub mod body;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod proxy;
pub mod server;
pub mod stages;

pub use server::Gateway;
