use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Result};

/// The constructors and views of a `String` newtype whose `check` says
/// which values it holds.
macro_rules! validated_string {
    ($name:ident) => {
        impl $name {
            pub fn parse(field: &str, value: &str) -> Result<Self> {
                Self::check(field, value)?;
                Ok(Self(value.to_owned()))
            }

            /// `parse` keeping the given `String` (rows read back).
            pub fn parse_owned(field: &str, value: String) -> Result<Self> {
                Self::check(field, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A pipeline's stable name: `[a-z][a-z0-9_-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PipelineName(String);

validated_string!(PipelineName);

impl PipelineName {
    fn check(field: &str, value: &str) -> Result<()> {
        let mut chars = value.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if value.is_empty() {
            return Err(DomainError::invalid(field, "is required"));
        }
        if !starts_with_letter || !rest_ok || value.len() > 63 {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{value:?} is not a pipeline name: use a lower-case letter, then up to 62 of a-z, 0-9, '_' and '-'"
                ),
            ));
        }
        Ok(())
    }
}

/// A stage's stable key within its pipeline: `[a-z0-9_]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageKey(String);

validated_string!(StageKey);

impl StageKey {
    fn check(field: &str, value: &str) -> Result<()> {
        if value.is_empty() {
            return Err(DomainError::invalid(field, "is required"));
        }
        let well_formed =
            value.len() <= 32 && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(DomainError::invalid(
                field,
                format!("{value:?} is not a stage key: use 1 to 32 of a-z, 0-9 and '_'"),
            ));
        }
        Ok(())
    }
}

/// An opportunity's id: a UUID (v7, so ids sort in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpportunityId(Uuid);

impl OpportunityId {
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn parse(field: &str, value: &str) -> Result<Self> {
        if value.is_empty() {
            return Err(DomainError::invalid(field, "is required"));
        }
        Uuid::parse_str(value).map(Self).map_err(|_| DomainError::invalid(field, format!("{value:?} is not a UUID")))
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OpportunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_keys_follow_the_documented_pattern() {
        assert!(StageKey::parse("stage", "qualified_2").is_ok());
        assert!(StageKey::parse("stage", "").is_err());
        assert!(StageKey::parse("stage", "Qualified").is_err());
        assert!(StageKey::parse("stage", &"a".repeat(33)).is_err());
    }

    #[test]
    fn parsing_an_owned_string_checks_the_same_and_keeps_it() {
        for value in ["qualified_2", "", "Qualified", "sales-eu", "9lives"] {
            assert_eq!(StageKey::parse_owned("stage", value.to_owned()), StageKey::parse("stage", value), "{value:?}");
            let owned = PipelineName::parse_owned("pipeline", value.to_owned());
            assert_eq!(owned, PipelineName::parse("pipeline", value), "{value:?}");
        }
        assert_eq!(StageKey::parse_owned("stage", "won".to_owned()).map(StageKey::into_string), Ok("won".to_owned()));
    }

    #[test]
    fn pipeline_names_start_with_a_letter() {
        assert!(PipelineName::parse("name", "sales-emea").is_ok());
        assert!(PipelineName::parse("name", "1sales").is_err());
        assert!(PipelineName::parse("name", "sales emea").is_err());
    }

    #[test]
    fn a_malformed_opportunity_id_names_the_field() {
        let error = OpportunityId::parse("id", "nope").expect_err("not a uuid");
        assert_eq!(error, DomainError::invalid("id", "\"nope\" is not a UUID"));
    }
}
