//! Bounds on every string, map and list the API accepts. They keep one request
//! from taking a disproportionate share of memory or storage.

use crate::DomainError;

/// Titles, accounts, owners, sources, actors, display names.
pub const MAX_SHORT_TEXT: usize = 256;
/// Notes and leak reasons.
pub const MAX_LONG_TEXT: usize = 4096;
/// External identifiers and request ids.
pub const MAX_ID_TEXT: usize = 128;
/// Entries in an opportunity's attribute map.
pub const MAX_ATTRIBUTES: usize = 64;
/// Bytes in an attribute key.
pub const MAX_ATTRIBUTE_KEY: usize = 64;
/// Bytes in an attribute value.
pub const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// Stages in one pipeline.
pub const MAX_STAGES: usize = 50;
/// Default and largest page size of list calls.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Opportunities in one import batch.
pub const MAX_IMPORT_BATCH: usize = 1000;
/// History entries and activities of one imported opportunity.
pub const MAX_IMPORT_HISTORY: usize = 1000;

/// Checks a free-text field's length (in bytes) and that it has no control
/// characters other than newline and tab.
pub fn check_text(field: &str, value: &str, max_len: usize) -> Result<(), DomainError> {
    if value.len() > max_len {
        return Err(DomainError::invalid(field, format!("must be at most {max_len} bytes, got {}", value.len())));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DomainError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Like [`check_text`], and also not empty or blank.
pub fn check_required_text(field: &str, value: &str, max_len: usize) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    check_text(field, value, max_len)
}

/// Resolves a requested page size: 0 means the default, above the maximum is
/// clamped (AIP-158), negative is an error.
pub fn page_size(field: &str, requested: i32) -> Result<u32, DomainError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(DomainError::invalid(field, "must not be negative")),
        n => Ok((n as u32).min(MAX_PAGE_SIZE)),
    }
}
