//! Plain input data (an opportunity's history) and its cutting into stage visits.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where an opportunity stands after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Open,
    Won,
    Leaked,
}

/// One pipeline stage. The pipeline is a slice of these in order; the last
/// one is the won stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub key: String,
    /// Days after which an opportunity in this stage counts as stale. When
    /// set, it overrides the rot point learned from history.
    pub rot_after_days: Option<u32>,
}

/// One change of stage or status. The first record of a history is the
/// creation (`from_stage` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub occurred_at: DateTime<Utc>,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub to_status: Status,
}

/// Something a salesperson did on the opportunity (call, mail, meeting):
/// when. The features count activities and the time since the latest; the
/// kind is not one, so rescoring need not read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub occurred_at: DateTime<Utc>,
}

/// Everything the scorer knows about one opportunity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityHistory {
    pub id: String,
    pub owner: String,
    pub source: String,
    pub amount_minor: i64,
    /// Free-form attributes (industry, employees, ...). Only their current
    /// values are known, so they are used as if they never changed.
    pub attributes: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// Ordered by `occurred_at`.
    pub transitions: Vec<TransitionRecord>,
    /// Ordered by `occurred_at`.
    pub activities: Vec<ActivityRecord>,
}

/// The stages, checked and indexed.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    keys: Vec<String>,
    rot_after_days: Vec<Option<u32>>,
    index: BTreeMap<String, usize>,
}

impl Pipeline {
    pub(crate) fn new(stages: &[StageInfo]) -> Result<Self> {
        if stages.is_empty() {
            return Err(Error::NoStages);
        }
        let mut index = BTreeMap::new();
        for (position, stage) in stages.iter().enumerate() {
            if index.insert(stage.key.clone(), position).is_some() {
                return Err(Error::DuplicateStage { key: stage.key.clone() });
            }
        }
        Ok(Self {
            keys: stages.iter().map(|stage| stage.key.clone()).collect(),
            rot_after_days: stages.iter().map(|stage| stage.rot_after_days).collect(),
            index,
        })
    }

    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }

    pub(crate) fn configured_rot(&self, key: &str) -> Option<u32> {
        self.position(key).and_then(|pos| self.rot_after_days[pos])
    }
}

/// How a finished visit ended: the label is `Advanced` versus the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisitOutcome {
    Advanced,
    Leaked,
    MovedBack,
}

/// The time an opportunity spent in one stage, from entering it until it
/// left or was closed in it (`ended` is `None` while it is still there).
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub(crate) stage: String,
    pub(crate) entered_at: DateTime<Utc>,
    pub(crate) ended: Option<(DateTime<Utc>, Option<VisitOutcome>)>,
    pub(crate) moves_before: u32,
    pub(crate) backward_moves_before: u32,
}

/// Fractional days from `from` to `to` (negative when `to` is earlier).
pub(crate) fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_seconds() as f64 / 86_400.0
}

/// Cuts a history into stage visits, ignoring records after `now`.
///
/// A visit whose ending move goes between stages the pipeline does not know
/// (so its direction is unknown) ends with outcome `None` and is not
/// labelled. A leaked visit ends the visit; a reopening starts a new one.
/// Returns the visits and the status as of `now`.
pub(crate) fn visits(
    history: &OpportunityHistory,
    pipeline: &Pipeline,
    now: DateTime<Utc>,
) -> Result<(Vec<Visit>, Status)> {
    let mut records = history.transitions.iter().filter(|record| record.occurred_at <= now);
    let Some(creation) = records.next() else {
        return Err(Error::EmptyHistory { id: history.id.clone() });
    };
    let mut status = creation.to_status;
    let mut stage = creation.to_stage.clone();
    let mut moves = 0_u32;
    let mut backward_moves = 0_u32;
    let mut finished = Vec::new();
    let mut open = (status == Status::Open).then(|| Visit {
        stage: stage.clone(),
        entered_at: creation.occurred_at,
        ended: None,
        moves_before: 0,
        backward_moves_before: 0,
    });

    for record in records {
        let stage_changed = record.to_stage != stage;
        let outcome = match (status, record.to_status) {
            (Status::Open, Status::Open) if !stage_changed => continue,
            (Status::Open, Status::Open) => match (pipeline.position(&stage), pipeline.position(&record.to_stage)) {
                (Some(from), Some(to)) if to > from => Some(VisitOutcome::Advanced),
                (Some(_), Some(_)) => Some(VisitOutcome::MovedBack),
                _ => None,
            },
            (Status::Open, Status::Won) => Some(VisitOutcome::Advanced),
            (Status::Open, Status::Leaked) => Some(VisitOutcome::Leaked),
            // Closed to closed, or a reopening: no visit ends here.
            (Status::Won | Status::Leaked, _) => None,
        };
        if let Some(mut visit) = open.take() {
            visit.ended = Some((record.occurred_at, outcome));
            finished.push(visit);
        }
        if stage_changed {
            moves += 1;
            if outcome == Some(VisitOutcome::MovedBack) {
                backward_moves += 1;
            }
        }
        status = record.to_status;
        stage = record.to_stage.clone();
        if status == Status::Open {
            open = Some(Visit {
                stage: stage.clone(),
                entered_at: record.occurred_at,
                ended: None,
                moves_before: moves,
                backward_moves_before: backward_moves,
            });
        }
    }
    finished.extend(open);
    Ok((finished, status))
}
