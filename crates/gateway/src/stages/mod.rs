//! The phases of the request path, one file each, in the order [`crate::flow`] runs them,
//! plus the pure helpers they share (which policies a token brings, rate-limit headers).

pub mod access;
pub mod authenticate;
pub mod forward;
pub mod identity;
pub mod limit;
pub mod respond;
pub mod route;
pub mod upstream_headers;

pub mod policies;
pub mod rate_headers;
