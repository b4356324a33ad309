//! Portico's developer portal: registration of API consumers' apps as OAuth clients at the
//! provider's IdP, the access-request workflow, the developer and admin pages and APIs.
//! Never on the gateway's request path: it talks to the gateway through the store (the
//! documents it wires, the revocations it records).
//!
//! What the portal's documents mean for the gateway is `portico_config::portal`.

pub mod api;
pub mod mail;
pub mod pages;
pub mod registration;
pub mod workflow;
