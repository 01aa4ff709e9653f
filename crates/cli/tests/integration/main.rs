//! The `funnel` command against a real pipeline service on 127.0.0.1:0.
//! Scoring commands are checked against a ScoringService with nothing
//! trained yet; scored leads and trained models need the scorer worker.

mod crm_scoring;
mod dev;
mod health;
mod import;
mod reps;
mod support;
mod tokens;
