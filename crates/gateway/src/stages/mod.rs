//! The request stages between routing and proxying, each a small pure step:
//! extract the token, pick the policies, describe limits in response headers, tell the
//! upstream who called.

pub mod identity_headers;
pub mod policies;
pub mod rate_headers;
pub mod token;
