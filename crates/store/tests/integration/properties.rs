//! Property test over a real SQLite store: random sequences of creates,
//! stage changes, updates and concurrent duplicate changes keep every
//! invariant: each stored state is the replay of its stored history, history
//! timestamps are ordered, a lost race is a conflict that writes nothing,
//! versions count exactly the acknowledged writes, and per-stage counts of
//! the listed opportunities add up to the total. A bounded number of cases
//! (`FUNNEL_STORE_PROPTEST_CASES`, default 64): each one migrates a fresh
//! database file.

use funnel_domain::{Command, OpportunityId, replay};
use funnel_store::{OpportunityFilter, OpportunityPatch, Store, StoreError};
use funnel_testkit::TestDatabase;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{command, full_history, new_opportunity, sales, stage};

const STAGES: [&str; 4] = ["prospect", "qualified", "committed", "transacted"];

#[derive(Debug, Clone)]
enum Change {
    Move(usize),
    Leak,
    Reopen(Option<usize>),
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    Change(usize, Change),
    Update(usize),
    /// Two changes sent at once, both conditioned on the version they read.
    ConcurrentDuplicate(usize, Change, Change),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0usize..4).prop_map(Change::Move),
        1 => Just(Change::Leak),
        1 => proptest::option::of(0usize..3).prop_map(Change::Reopen),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Create),
        4 => (any::<usize>(), change()).prop_map(|(target, change)| Op::Change(target, change)),
        1 => any::<usize>().prop_map(Op::Update),
        1 => (any::<usize>(), change(), change()).prop_map(|(target, a, b)| Op::ConcurrentDuplicate(target, a, b)),
    ]
}

fn to_command(change: &Change) -> Command {
    match change {
        Change::Move(index) => Command::Move { to: stage(STAGES[*index]) },
        Change::Leak => Command::Leak { reason: "no budget".to_owned() },
        Change::Reopen(index) => Command::Reopen { stage: index.map(|index| stage(STAGES[index])) },
    }
}

/// A refusal by the rules or a lost race: nothing was written.
fn refused(error: &StoreError) -> bool {
    matches!(error, StoreError::Domain(_) | StoreError::Conflict(_))
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition { Ok(()) } else { Err(TestCaseError::fail(message())) }
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let database = TestDatabase::sqlite();
    let store: Store = database.store().await;
    // Ids and how many writes to each were acknowledged (the creation included).
    let mut opportunities: Vec<(OpportunityId, i64)> = Vec::new();
    for op in ops {
        match op {
            Op::Create => {
                let created = store.create_opportunity(new_opportunity("property", None)).await;
                let created = created.map_err(|error| TestCaseError::fail(format!("create: {error}")))?;
                opportunities.push((created.id, 1));
            }
            _ if opportunities.is_empty() => {}
            Op::Change(target, change) => {
                let count = opportunities.len();
                let (id, acknowledged) = &mut opportunities[target % count];
                match store.change_stage(*id, command(to_command(&change), None, None)).await {
                    Ok(_) => *acknowledged += 1,
                    Err(error) => check(refused(&error), || format!("change: {error}"))?,
                }
            }
            Op::Update(target) => {
                let count = opportunities.len();
                let (id, acknowledged) = &mut opportunities[target % count];
                let patch = OpportunityPatch { title: Some(format!("renamed {acknowledged}")), ..Default::default() };
                match store.update_opportunity(*id, patch, None).await {
                    Ok(_) => *acknowledged += 1,
                    Err(error) => check(refused(&error), || format!("update: {error}"))?,
                }
            }
            Op::ConcurrentDuplicate(target, first, second) => {
                let count = opportunities.len();
                let (id, acknowledged) = &mut opportunities[target % count];
                let version = store.get_opportunity(*id).await.map_err(|e| TestCaseError::fail(e.to_string()))?.version;
                let (a, b) = tokio::join!(
                    store.change_stage(*id, command(to_command(&first), Some(version), None)),
                    store.change_stage(*id, command(to_command(&second), Some(version), None)),
                );
                let succeeded = [&a, &b].iter().filter(|result| result.is_ok()).count();
                check(succeeded <= 1, || format!("both changes from version {version} succeeded"))?;
                for result in [&a, &b] {
                    if let Err(error) = result {
                        check(refused(error), || format!("concurrent change: {error}"))?;
                    }
                }
                *acknowledged += succeeded as i64;
            }
        }
    }

    let mut per_stage_total = 0;
    for key in STAGES {
        let filter = OpportunityFilter { pipeline: Some(sales()), stage: Some(stage(key)), ..Default::default() };
        let page = store.list_opportunities(&filter, 1000, "").await.map_err(|e| TestCaseError::fail(e.to_string()))?;
        per_stage_total += page.items.len();
    }
    check(per_stage_total == opportunities.len(), || {
        format!("per-stage counts add up to {per_stage_total}, not {}", opportunities.len())
    })?;
    for (id, acknowledged) in &opportunities {
        let stored = store.get_opportunity(*id).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let history = full_history(&store, *id).await;
        let replayed = replay(&history).map_err(|e| TestCaseError::fail(format!("replay: {e}")))?;
        check(replayed == stored.state, || format!("{id}: state {:?} is not the replay {replayed:?}", stored.state))?;
        for pair in history.windows(2) {
            check(pair[0].occurred_at <= pair[1].occurred_at, || format!("{id}: history out of order"))?;
        }
        check(stored.version == *acknowledged, || {
            format!("{id}: version {} but {acknowledged} acknowledged writes", stored.version)
        })?;
    }
    Ok(())
}

#[test]
fn random_operations_on_a_real_sqlite_store_keep_every_invariant() {
    let cases = std::env::var("FUNNEL_STORE_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = proptest::collection::vec(op(), 1..40);
    let result = runner.run(&strategy, |ops| runtime.block_on(run_case(ops)));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    println!("store properties: {cases} cases on SQLite");
}
