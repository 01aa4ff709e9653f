//! The scorer against a real store and the real gRPC service.

mod history;
mod lifecycle;
mod scoring;
mod workers;
