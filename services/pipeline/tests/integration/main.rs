//! One integration-test binary for funnel-pipeline: the real server on
//! `127.0.0.1:0`, the generated client, SQLite always and PostgreSQL when
//! `FUNNEL_TEST_DATABASE_URL` is set.

mod activities;
mod auth;
mod bad_input;
mod concurrency;
mod crash;
mod db_faults;
mod events;
mod fuzz;
mod import;
mod lifecycle;
mod limits;
mod listing;
mod observability;
mod pipelines;
mod report;
mod service;
mod support;
mod tls;
mod update;
