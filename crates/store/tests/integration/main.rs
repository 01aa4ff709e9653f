//! One integration-test binary for funnel-store. Every test is written once
//! and runs on SQLite, and on PostgreSQL when `FUNNEL_TEST_DATABASE_URL` is
//! set.

mod conflicts;
mod feed;
mod histories;
mod import;
mod migrations;
mod pool;
mod properties;
mod reads;
mod replay;
mod scores;
mod sqlite_build;
mod support;
