//! Property test: any sequence of commands, applied the way the service
//! applies them, leaves a state equal to the replay of the history written.

use chrono::{DateTime, Duration, TimeZone, Utc};
use funnel_domain::{
    Command, OpportunityState, Status, Transition, TransitionKind, apply, created, decide, default_pipeline, replay,
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
