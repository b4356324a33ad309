//! Portico's data plane.
//!
//! - [`flow`]: the request path, phase by phase, over a per-request context; each phase is
//!   one file in [`stages`].
//! - [`pipeline`]: one config version assembled for serving (routes, verifiers), swapped
//!   atomically on reload.
//! - [`admission`]: what a verified token means for an API, and the cache of it.
//! - [`proxy`]: Portico's HTTP/1.1 upstream client and connection pools.
//! - [`tls`]: listener certificates (reloadable) and upstream TLS settings.
//! - [`error`]: every failure, whose fault it is, and the one mapping to HTTP responses.
//! - [`gateway`]: [`Gateway`], the state that outlives config versions; [`server`]: listeners
//!   and connections; [`ops`]: `/metrics`, `/health`, `/ready`.
//! - [`metrics`]: Prometheus metrics.
//! - [`revocations`]: the revocations in force, checked on every authenticated request.
//! - [`sessions`]: what the admin API asks of a running gateway (identity sessions, their
//!   counters, a JWKS refresh).
//! - [`shared_answers`]: the introspection cache the nodes share, in the limiter's Redis.

pub mod admission;
pub mod body;
pub mod error;
pub mod flow;
pub mod gateway;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod proxy;
pub mod revocations;
pub mod server;
pub mod sessions;
pub mod shared_answers;
pub mod stages;
pub mod tls;
pub mod usage;

pub use gateway::Gateway;
