//! Fixtures for funnel's integration tests: a fresh database per test on
//! SQLite (always) and PostgreSQL (when `FUNNEL_TEST_DATABASE_URL` is set),
//! and the real pipeline service on `127.0.0.1:0` with its generated client.

mod database;
mod proxy;
mod server;

pub use database::{POSTGRES_URL_ENV, TestDatabase, backends};
pub use proxy::TcpProxy;
pub use server::{PIPELINE_SERVICE, TestServer};
