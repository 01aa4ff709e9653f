//! The `funnel` command as a library: every command is an async function
//! that talks to the service over gRPC and returns a report, which
//! [`output::emit`] prints as aligned tables for people or as JSON for
//! scripts. `main.rs` only parses flags and dispatches, so tests (and
//! `funnel dev`) call these functions directly.

pub mod client;
pub mod dev;
pub mod error;
pub mod health;
pub mod import;
pub mod models;
pub mod opportunities;
pub mod output;
pub mod report;
pub mod simulate;
pub mod stream;
pub mod token;
pub mod views;

pub use client::{ACTOR_METADATA, Client, ConnectArgs, DEFAULT_SERVER};
pub use error::{CliError, Result};
pub use output::{Format, Report, emit};
