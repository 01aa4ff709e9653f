//! One integration-test binary for funnel-pipeline: the real server on
//! `127.0.0.1:0`, the generated client, SQLite always and PostgreSQL when
//! `FUNNEL_TEST_DATABASE_URL` is set.

mod activities;
mod bad_input;
mod concurrency;
mod import;
mod lifecycle;
mod listing;
mod pipelines;
mod service;
mod support;
mod update;
