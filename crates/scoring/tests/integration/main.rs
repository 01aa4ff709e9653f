//! One integration-test binary for funnel-scoring (fewer link steps).

#![allow(clippy::unwrap_used)]

mod cold_start;
mod examples;
mod known_answer;
mod orientation;
mod sampling;
mod support;
mod synthetic;
