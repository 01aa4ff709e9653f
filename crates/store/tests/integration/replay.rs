//! The stored state of an opportunity is always the replay of its history.

use chrono::{Duration, SubsecRound, Utc};
use funnel_domain::{Command, replay};
use funnel_store::StoreError;
use funnel_testkit::backends;

use crate::support::{command, full_history, new_opportunity, stage};

/// A small deterministic generator: the same "random" walk on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn the_stored_state_equals_the_replay_of_the_history_after_every_change() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let stages = ["prospect", "qualified", "committed", "transacted"];
        let mut random = Lcg(0x5eed);
        for walk in 0..3 {
            let start = (Utc::now() - Duration::days(200)).trunc_subsecs(0);
            let created =
                store.create_opportunity(new_opportunity(&format!("walk {walk}"), Some(start))).await.expect("create");
            let (mut applied, mut refused) = (0, 0);
            for step in 1..=40 {
                let occurred_at =
                    Some(start + Duration::hours(step * 7) + Duration::microseconds(random.below(999) as i64));
                let chosen = match random.below(6) {
                    0..=2 => Command::Move { to: stage(stages[random.below(4) as usize]) },
                    3 => Command::Leak { reason: format!("reason {step}") },
                    4 => Command::Reopen { stage: None },
                    _ => Command::Reopen { stage: Some(stage(stages[random.below(4) as usize])) },
                };
                // With or without the etag: both paths must keep state and history in step.
                let expected_version = if step % 2 == 0 {
                    Some(store.get_opportunity(created.id).await.expect("get").version)
                } else {
                    None
                };
                match store.change_stage(created.id, command(chosen.clone(), expected_version, occurred_at)).await {
                    Ok(_) => applied += 1,
                    // Moving a closed one, reopening an open one, into the won stage...: refused by the rules.
                    Err(StoreError::Domain(_)) => refused += 1,
                    Err(other) => panic!("step {step} ({chosen:?}) failed unexpectedly: {other}"),
                }
                let stored = store.get_opportunity(created.id).await.expect("get");
                let history = full_history(&store, created.id).await;
                let replayed = replay(&history).expect("the history replays");
                assert_eq!(stored.state, replayed, "walk {walk}, step {step}: state is the replay of history");
                assert_eq!(history.len() as i64, stored.state.sequence);
            }
            assert!(
                applied >= 10 && refused >= 3,
                "the walk exercises both paths: {applied} applied, {refused} refused"
            );
        }
    }
}
