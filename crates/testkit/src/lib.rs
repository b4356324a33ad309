//! Test fixtures shared by Portico's crates (a dev-dependency only; never in the binary):
//! real peers on loopback and the helpers tests would otherwise copy.
//!
//! - [`forwarder`]: a TCP forwarder a test can cut, for network faults.
//! - [`gateway`]: a gateway on `127.0.0.1:0`, an echo upstream, keys and config builders.
//! - [`scripted`]: a raw TCP upstream that answers byte for byte, for fault injection.
//! - [`idp`]: the real test IdP (`tests/idp`, npm `oidc-provider`) as a child process.
//! - [`pki`]: CAs and certificates made in the test, as PEM files.
//! - [`postgres`]: a fresh PostgreSQL database per test.
//! - [`redis`]: a `redis-server` of the test's own, stoppable and restartable.
//! - [`smtp`]: a real SMTP server (Python `aiosmtpd`) and the messages it received.
//! - [`tempdir`]: folders removed on drop.

pub mod forwarder;
pub mod gateway;
pub mod idp;
pub mod pki;
pub mod postgres;
pub mod redis;
pub mod scripted;
pub mod smtp;
pub mod tempdir;

pub use gateway::*;
pub use tempdir::TempDir;
