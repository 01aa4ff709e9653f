//! Timestamps are stored as microseconds since the Unix epoch.

use chrono::{DateTime, Utc};

pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Stored values were written by [`to_micros`], so they are always in range;
/// the epoch stands in for a corrupted one rather than a panic.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// `at` at the stored precision, so that what a write returns equals what a
/// later read (or an idempotent retry) returns.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(to_micros(at))
}

/// The current time at the stored precision.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}
