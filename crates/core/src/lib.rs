//! Portico's domain model: APIs, policies, identity sessions, scope-to-policy mapping and the
//! rules that merge several policies into one effective grant.
//!
//! Everything here is plain, validated data and pure functions: no I/O, no clocks, no HTTP.
//! The config loaders build these types; the auth, limits and gateway crates consume them.

pub mod api;
pub mod claims;
pub mod config;
pub mod identity;
pub mod introspection;
pub mod jwt;
pub mod merge;
pub mod net;
pub mod policy;
pub mod prehashed;
pub mod redis_url;
pub mod resource;
pub mod revocation;
pub mod url;

pub use api::{ApiId, ApiSpec, ListenPath, PolicySource, UpstreamHeaders};
pub use claims::ClaimPath;
pub use config::{ConfigError, GatewayConfig};
pub use identity::{Identity, IdentitySpec, SessionId};
pub use merge::{AccessDecision, EffectiveGrant};
pub use policy::{AccessRule, ApiAccess, Policy, PolicyId, PolicySet, Quota, RateLimit};
pub use redis_url::RedisUrl;
pub use url::HttpUrl;
