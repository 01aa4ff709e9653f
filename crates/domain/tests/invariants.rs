//! Property test: any sequence of commands, applied the way the service
//! applies them, leaves a state equal to the replay of the history written.

use chrono::{DateTime, Duration, TimeZone, Utc};
use funnel_domain::{
    Command, OpportunityState, Status, Transition, TransitionKind, apply, check_occurred_at, created, decide,
    default_pipeline, replay,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Move(usize),
    Leak,
    Reopen(Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(0usize..4).prop_map(Op::Move), Just(Op::Leak), proptest::option::of(0usize..4).prop_map(Op::Reopen),]
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid date")
}

proptest! {
    #[test]
    fn state_is_always_the_replay_of_history(ops in proptest::collection::vec((op(), 0i64..100_000), 0..40)) {
        let pipeline = default_pipeline();
        let first = Transition {
            sequence: 1,
            from_stage: None,
            to_stage: pipeline.first_stage().clone(),
            from_status: None,
            to_status: Status::Open,
            kind: TransitionKind::Created,
            occurred_at: start(),
            actor: "rep".into(),
            reason: String::new(),
            note: String::new(),
        };
        let mut history = vec![first.clone()];
        let mut state: OpportunityState = created(&first).expect("creation row");
        let mut clock = start();
        for (op, seconds) in ops {
            clock += Duration::seconds(seconds);
            let stage_at = |index: usize| pipeline.stages()[index].key.clone();
            let command = match op {
                Op::Move(index) => Command::Move { to: stage_at(index) },
                Op::Leak => Command::Leak { reason: "no budget".into() },
                Op::Reopen(index) => Command::Reopen { stage: index.map(stage_at) },
            };
            // Refused commands write nothing; accepted ones append exactly one row.
            let Ok(row) = decide(&pipeline, &state, command, clock, "rep", "") else { continue };
            state = apply(&state, &row).expect("a decided row follows");
            history.push(row);
            prop_assert_eq!(&replay(&history).expect("history replays"), &state);
        }
        // Invariants a reader of the history relies on.
        for pair in history.windows(2) {
            prop_assert!(pair[0].occurred_at <= pair[1].occurred_at);
            prop_assert_eq!(pair[0].sequence + 1, pair[1].sequence);
        }
        let won = pipeline.won_stage().clone();
        prop_assert_eq!(state.status == Status::Won, state.stage == won);
        prop_assert_eq!(state.closed_at.is_some(), state.status != Status::Open);
    }
}

/// An operation on one of several opportunities.
#[derive(Debug, Clone)]
enum FleetOp {
    /// Creates one more opportunity in the stage at this index.
    Create(usize),
    /// Applies a command to the opportunity at this index (modulo the count).
    Change(usize, Op),
    /// A descriptive update: no stage or status change, so no history row.
    Update(usize),
    /// Two commands decided from the same state, as two concurrent requests
    /// would: only the first may be applied.
    ConcurrentDuplicate(usize, Op, Op),
    /// A command stamped earlier than the latest change.
    Backdated(usize, Op),
}

fn fleet_op() -> impl Strategy<Value = FleetOp> {
    prop_oneof![
        1 => (0usize..3).prop_map(FleetOp::Create),
        4 => (any::<usize>(), op()).prop_map(|(target, op)| FleetOp::Change(target, op)),
        1 => any::<usize>().prop_map(FleetOp::Update),
        1 => (any::<usize>(), op(), op()).prop_map(|(target, first, second)| FleetOp::ConcurrentDuplicate(target, first, second)),
        1 => (any::<usize>(), op()).prop_map(|(target, op)| FleetOp::Backdated(target, op)),
    ]
}

fn command(pipeline: &funnel_domain::PipelineDef, op: &Op) -> Command {
    let stage_at = |index: usize| pipeline.stages()[index].key.clone();
    match op {
        Op::Move(index) => Command::Move { to: stage_at(*index) },
        Op::Leak => Command::Leak { reason: "no budget".into() },
        Op::Reopen(index) => Command::Reopen { stage: index.map(stage_at) },
    }
}

/// One opportunity as the service keeps it: its state and its history.
struct Tracked {
    state: OpportunityState,
    history: Vec<Transition>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Many opportunities under a random mix of operations: each state is the
    /// replay of its history, histories are ordered, concurrent duplicates
    /// and backdated changes are refused, and opportunities are conserved:
    /// per stage, those in it are those that entered it minus those that left.
    #[test]
    fn a_fleet_of_opportunities_keeps_every_invariant(ops in proptest::collection::vec((fleet_op(), 1i64..50_000), 1..80)) {
        let pipeline = default_pipeline();
        let mut fleet: Vec<Tracked> = Vec::new();
        let mut clock = start();
        for (op, seconds) in ops {
            clock += Duration::seconds(seconds);
            match op {
                FleetOp::Create(stage) => {
                    let first = Transition {
                        sequence: 1,
                        from_stage: None,
                        to_stage: pipeline.stages()[stage].key.clone(),
                        from_status: None,
                        to_status: Status::Open,
                        kind: TransitionKind::Created,
                        occurred_at: clock,
                        actor: "rep".into(),
                        reason: String::new(),
                        note: String::new(),
                    };
                    let state = created(&first).expect("creation row");
                    fleet.push(Tracked { state, history: vec![first] });
                }
                _ if fleet.is_empty() => continue,
                FleetOp::Change(target, op) => {
                    let count = fleet.len();
                    let tracked = &mut fleet[target % count];
                    let Ok(row) = decide(&pipeline, &tracked.state, command(&pipeline, &op), clock, "rep", "") else { continue };
                    tracked.state = apply(&tracked.state, &row).expect("a decided row follows");
                    tracked.history.push(row);
                }
                FleetOp::Update(target) => {
                    let count = fleet.len();
                    let tracked = &fleet[target % count];
                    // Descriptive fields live outside the history: the replay is unchanged.
                    prop_assert_eq!(&replay(&tracked.history).expect("replays"), &tracked.state);
                }
                FleetOp::ConcurrentDuplicate(target, first, second) => {
                    let count = fleet.len();
                    let tracked = &mut fleet[target % count];
                    let seen = tracked.state.clone();
                    let first_row = decide(&pipeline, &seen, command(&pipeline, &first), clock, "rep", "");
                    let second_row = decide(&pipeline, &seen, command(&pipeline, &second), clock, "rep", "");
                    let Ok(first_row) = first_row else { continue };
                    tracked.state = apply(&tracked.state, &first_row).expect("the first one wins");
                    tracked.history.push(first_row);
                    if let Ok(second_row) = second_row {
                        // Decided from a state that is gone: it must not apply on top.
                        prop_assert!(apply(&tracked.state, &second_row).is_err(), "a stale duplicate applied");
                    }
                }
                FleetOp::Backdated(target, op) => {
                    let count = fleet.len();
                    let tracked = &fleet[target % count];
                    let earlier = tracked.state.last_change_at - Duration::seconds(1);
                    prop_assert!(check_occurred_at("occurred_at", earlier, Some(tracked.state.last_change_at), clock).is_err());
                    // The command itself is still decidable now: nothing was written by the refusal.
                    let _ = command(&pipeline, &op);
                }
            }
        }

        let mut in_stage = std::collections::HashMap::<String, i64>::new();
        let mut entered_minus_left = std::collections::HashMap::<String, i64>::new();
        for tracked in &fleet {
            prop_assert_eq!(&replay(&tracked.history).expect("history replays"), &tracked.state);
            for pair in tracked.history.windows(2) {
                prop_assert!(pair[0].occurred_at <= pair[1].occurred_at);
                prop_assert_eq!(pair[0].sequence + 1, pair[1].sequence);
            }
            prop_assert_eq!(tracked.state.sequence, tracked.history.len() as i64);
            *in_stage.entry(tracked.state.stage.to_string()).or_default() += 1;
            for row in &tracked.history {
                *entered_minus_left.entry(row.to_stage.to_string()).or_default() += 1;
                if let Some(from) = &row.from_stage {
                    *entered_minus_left.entry(from.to_string()).or_default() -= 1;
                }
            }
        }
        let total: i64 = in_stage.values().sum();
        prop_assert_eq!(total, fleet.len() as i64, "every opportunity is in exactly one stage");
        entered_minus_left.retain(|_, net| *net != 0);
        prop_assert_eq!(in_stage, entered_minus_left, "per stage: in it = entered - left");
    }
}
