use chrono::{DateTime, Duration, Utc};

use crate::{DomainError, OpportunityState, PipelineDef, Result, StageKey, Status};

/// How far ahead of the server's clock a client's `occurred_at` may be before
/// it counts as "in the future": clocks of callers drift a little.
const CLOCK_SKEW: Duration = Duration::seconds(5);

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    Created,
    Advanced,
    MovedBack,
    Won,
    Leaked,
    Reopened,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Created => "created",
            TransitionKind::Advanced => "advanced",
            TransitionKind::MovedBack => "moved_back",
            TransitionKind::Won => "won",
            TransitionKind::Leaked => "leaked",
            TransitionKind::Reopened => "reopened",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "created" => Some(TransitionKind::Created),
            "advanced" => Some(TransitionKind::Advanced),
            "moved_back" => Some(TransitionKind::MovedBack),
            "won" => Some(TransitionKind::Won),
            "leaked" => Some(TransitionKind::Leaked),
            "reopened" => Some(TransitionKind::Reopened),
            _ => None,
        }
    }
}

/// One append-only row of stage history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub sequence: i64,
    pub from_stage: Option<StageKey>,
    pub to_stage: StageKey,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub kind: TransitionKind,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub reason: String,
    pub note: String,
}

/// A change of stage or status someone asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Move { to: StageKey },
    Leak { reason: String },
    Reopen { stage: Option<StageKey> },
}

/// Checks a caller-supplied `occurred_at`: not in the future and, once the
/// opportunity exists, not before its latest change.
pub fn check_occurred_at(
    field: &str,
    occurred_at: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    if occurred_at > now + CLOCK_SKEW {
        return Err(DomainError::invalid(field, format!("{occurred_at} is in the future (server time {now})")));
    }
    if let Some(not_before) = not_before
        && occurred_at < not_before
    {
        return Err(DomainError::invalid(
            field,
            format!("{occurred_at} is before the opportunity's latest change at {not_before}"),
        ));
    }
    Ok(())
}

/// Decides the history row a command appends, or why it may not happen.
/// `occurred_at` has already passed [`check_occurred_at`].
pub fn decide(
    pipeline: &PipelineDef,
    state: &OpportunityState,
    command: Command,
    occurred_at: DateTime<Utc>,
    actor: &str,
    note: &str,
) -> Result<Transition> {
    let row = |to_stage: StageKey, to_status: Status, kind: TransitionKind, reason: String| Transition {
        sequence: state.sequence + 1,
        from_stage: Some(state.stage.clone()),
        to_stage,
        from_status: Some(state.status),
        to_status,
        kind,
        occurred_at,
        actor: actor.to_owned(),
        reason,
        note: note.to_owned(),
    };
    match command {
        Command::Move { to } => {
            require_open(state, "moved")?;
            let target = pipeline.require_stage("stage", &to)?;
            let current = pipeline.position(&state.stage).ok_or_else(|| stage_gone(pipeline, &state.stage))?;
            if target == current {
                return Err(DomainError::FailedPrecondition(format!("the opportunity is already in stage {to}")));
            }
            let (status, kind) = if pipeline.is_won_stage(&to) {
                (Status::Won, TransitionKind::Won)
            } else if target > current {
                (Status::Open, TransitionKind::Advanced)
            } else {
                (Status::Open, TransitionKind::MovedBack)
            };
            Ok(row(to, status, kind, String::new()))
        }
        Command::Leak { reason } => {
            require_open(state, "leaked")?;
            if reason.trim().is_empty() {
                return Err(DomainError::invalid("reason", "is required: say why the opportunity leaked"));
            }
            Ok(row(state.stage.clone(), Status::Leaked, TransitionKind::Leaked, reason))
        }
        Command::Reopen { stage } => {
            if state.status == Status::Open {
                return Err(DomainError::FailedPrecondition("the opportunity is already open".to_owned()));
            }
            let target = match stage {
                Some(stage) => stage,
                None if state.status == Status::Won => state.previous_stage.clone().ok_or_else(|| {
                    DomainError::FailedPrecondition(
                        "a won opportunity with no earlier stage needs an explicit stage".into(),
                    )
                })?,
                None => state.stage.clone(),
            };
            pipeline.require_stage("stage", &target)?;
            if pipeline.is_won_stage(&target) {
                return Err(DomainError::invalid("stage", format!("cannot reopen into the won stage {target}")));
            }
            Ok(row(target, Status::Open, TransitionKind::Reopened, String::new()))
        }
    }
}

fn require_open(state: &OpportunityState, verb: &str) -> Result<()> {
    if state.status != Status::Open {
        return Err(DomainError::FailedPrecondition(format!(
            "the opportunity is {} and cannot be {verb}; reopen it first",
            state.status
        )));
    }
    Ok(())
}

fn stage_gone(pipeline: &PipelineDef, stage: &StageKey) -> DomainError {
    DomainError::FailedPrecondition(format!(
        "the opportunity's stage {stage} no longer exists in pipeline {}",
        pipeline.name
    ))
}

/// The state right after the creation row.
pub fn created(first: &Transition) -> Result<OpportunityState> {
    if first.kind != TransitionKind::Created || first.from_stage.is_some() || first.sequence != 1 {
        return Err(DomainError::invalid("history[0]", "the first row must be the creation, sequence 1"));
    }
    Ok(OpportunityState {
        stage: first.to_stage.clone(),
        status: first.to_status,
        created_at: first.occurred_at,
        stage_entered_at: first.occurred_at,
        closed_at: (first.to_status != Status::Open).then_some(first.occurred_at),
        leak_reason: (first.to_status == Status::Leaked).then(|| first.reason.clone()),
        last_change_at: first.occurred_at,
        previous_stage: None,
        sequence: 1,
    })
}

/// The state after one more history row, or why the row does not follow.
pub fn apply(state: &OpportunityState, row: &Transition) -> Result<OpportunityState> {
    let follows = row.sequence == state.sequence + 1
        && row.from_stage.as_ref() == Some(&state.stage)
        && row.from_status == Some(state.status)
        && row.occurred_at >= state.last_change_at;
    if !follows {
        return Err(DomainError::invalid(
            "history",
            format!("row {} does not follow from the row before", row.sequence),
        ));
    }
    // A reopened opportunity starts a new visit of its stage, even the same one.
    let new_visit = row.to_stage != state.stage || row.kind == TransitionKind::Reopened;
    Ok(OpportunityState {
        stage: row.to_stage.clone(),
        status: row.to_status,
        created_at: state.created_at,
        stage_entered_at: if new_visit { row.occurred_at } else { state.stage_entered_at },
        closed_at: (row.to_status != Status::Open).then_some(row.occurred_at),
        leak_reason: (row.to_status == Status::Leaked).then(|| row.reason.clone()),
        last_change_at: row.occurred_at,
        previous_stage: Some(state.stage.clone()),
        sequence: row.sequence,
    })
}

/// Rebuilds an opportunity's state from its history, checking that every row
/// follows from the one before. The service's stored state must always equal
/// this.
pub fn replay(history: &[Transition]) -> Result<OpportunityState> {
    let Some(first) = history.first() else {
        return Err(DomainError::invalid("history", "is empty: the first row must be the creation"));
    };
    let mut state = created(first)?;
    for row in &history[1..] {
        state = apply(&state, row)?;
    }
    Ok(state)
}
