//! Access-token verification for Portico.
//!
//! - [`jws`]: compact JWS parsing (strict base64url, bounded header, no `none`).
//! - [`keys`]: verification keys pinned to their algorithms, from secrets, PEM and JWKs.
//! - [`sources`]: remote key sets (JWKS URL, OIDC discovery) with refresh and refetch on
//!   unknown `kid`; [`sources::KeyLiveness`] tells whether a token's key is still published.
//! - [`claims`]: time and audience checks.
//! - [`verifier`]: [`JwtVerifier::verify_access_token`], the single verification path (local
//!   signatures, and [`introspection`] for opaque tokens and issuers without keys).
//! - [`sign`]: signing, for `portico token mint` and tests.
//! - [`upstream_jwt`]: the gateway-signed JWT sent upstream (cached per caller) and its JWKS.
//!
//! This crate knows nothing about HTTP routing.

pub mod claims;
pub mod error;
pub mod introspection;
pub mod jws;
pub mod keys;
pub mod sign;
pub mod sources;
pub mod upstream_jwt;
pub mod verifier;

pub use error::TokenError;
pub use sources::KeySourceRegistry;
pub use verifier::{JwtVerifier, VerifiedToken};
