//! The scorer against a real store and the real gRPC service.

mod history;
mod killed;
mod lifecycle;
mod scoring;
mod workers;
