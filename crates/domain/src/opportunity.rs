use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainError, Result, StageKey};

/// Where an opportunity stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Won,
    Leaked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Won => "won",
            Status::Leaked => "leaked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(Status::Open),
            "won" => Some(Status::Won),
            "leaked" => Some(Status::Leaked),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of engagement an activity was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Note => "note",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "call" => Some(ActivityKind::Call),
            "email" => Some(ActivityKind::Email),
            "meeting" => Some(ActivityKind::Meeting),
            "note" => Some(ActivityKind::Note),
            _ => None,
        }
    }
}

/// An amount in a currency's minor unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency_code: String,
    pub amount_minor: i64,
}

impl Money {
    pub fn new(field: &str, currency_code: &str, amount_minor: i64) -> Result<Self> {
        let is_code = currency_code.len() == 3 && currency_code.chars().all(|c| c.is_ascii_uppercase());
        if !is_code {
            return Err(DomainError::invalid(
                format!("{field}.currency_code"),
                format!("{currency_code:?} is not an ISO 4217 code such as USD"),
            ));
        }
        if amount_minor < 0 {
            return Err(DomainError::invalid(format!("{field}.amount_minor"), "must not be negative"));
        }
        Ok(Self { currency_code: currency_code.to_owned(), amount_minor })
    }
}

/// The stage-related state of an opportunity: exactly what replaying its
/// history yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpportunityState {
    pub stage: StageKey,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub stage_entered_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub leak_reason: Option<String>,
    /// `occurred_at` of the latest history row; later changes may not predate it.
    pub last_change_at: DateTime<Utc>,
    /// The stage before the latest change, where reopening a won one returns.
    pub previous_stage: Option<StageKey>,
    /// Sequence number of the latest history row.
    pub sequence: i64,
}
