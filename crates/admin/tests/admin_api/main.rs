//! The admin API over real HTTP on 127.0.0.1: each test starts its own server on its own
//! store (SQLite in a temp folder, or a fresh PostgreSQL database).

mod apply;
mod auth;
mod fixture;
mod openapi_document;
mod resources;
