//! A batch of scores lands whole: appended to the history, upserted as the
//! current scores and announced in the feed, on both backends.

use chrono::{Duration, SubsecRound, Utc};
use funnel_store::{EventFilter, EventKind, LeadScoreRecord, Pruned, ScoreFactor, ScoreFilter};
use funnel_testkit::backends;
use sea_orm::ConnectionTrait;

use crate::support::{create_opportunities, new_opportunity};

fn score(opportunity: &funnel_store::Opportunity, p_advance: f64, scored_at: chrono::DateTime<Utc>) -> LeadScoreRecord {
    LeadScoreRecord {
        opportunity_id: opportunity.id,
        pipeline: opportunity.pipeline.to_string(),
        stage: opportunity.state.stage.to_string(),
        owner: opportunity.owner.clone(),
        // Text that needs escaping in every encoding on the way.
        title: format!("{} \"quoted\"\t{{braces}}, \\ and ünïcode", opportunity.title),
        model_version: 3,
        p_advance,
        p_win: p_advance / 4.0,
        leak_flag: p_advance < 0.45,
        reason_codes: vec!["stalled_in_stage".to_owned(), "no_recent_activity".to_owned()],
        factors_down: vec![ScoreFactor {
            feature: "days_in_stage".to_owned(),
            value: "41".to_owned(),
            contribution: -1.25,
        }],
        factors_up: vec![ScoreFactor { feature: "source".to_owned(), value: "referral".to_owned(), contribution: 0.5 }],
        days_in_stage: 41.5,
        scored_at,
    }
}

#[tokio::test]
async fn a_batch_of_scores_is_appended_upserted_and_announced() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let opportunities = create_opportunities(&store, "lead", 5).await;
        let after = store.last_event_sequence().await.expect("sequence");
        let first_at = (Utc::now() - Duration::hours(2)).trunc_subsecs(0);
        let second_at = first_at + Duration::hours(1);
        let first: Vec<_> =
            opportunities.iter().enumerate().map(|(n, o)| score(o, 0.1 + n as f64 / 10.0, first_at)).collect();
        store.write_scores(&first).await.expect("first batch");
        // The second batch rescores three of them.
        let second: Vec<_> = opportunities[..3].iter().map(|o| score(o, 0.9, second_at)).collect();
        store.write_scores(&second).await.expect("second batch");

        for (n, opportunity) in opportunities.iter().enumerate() {
            let current = store.lead_score(opportunity.id, None).await.expect("current score");
            let expected = if n < 3 { &second[n] } else { &first[n] };
            assert_eq!(&current, expected, "lead {n}: the latest score, every field intact");
            let earlier = store.lead_score(opportunity.id, Some(first_at + Duration::minutes(1))).await.expect("as of");
            assert_eq!(earlier, first[n], "lead {n}: the history keeps the first score");
        }
        let listed = store.list_scores(&ScoreFilter::default(), 50, "").await.expect("list scores");
        assert_eq!(listed.items.len(), 5, "one current score each");
        let flagged = ScoreFilter { flagged_only: true, ..ScoreFilter::default() };
        let listed = store.list_scores(&flagged, 50, "").await.expect("list flagged");
        assert_eq!(listed.items.iter().map(|s| s.opportunity_id).collect::<Vec<_>>(), vec![opportunities[3].id]);

        let events = store.events_after(after, &EventFilter::default(), 100).await.expect("feed");
        let counts: Vec<(EventKind, String)> = events
            .iter()
            .map(|event| {
                let payload: serde_json::Value = serde_json::from_str(&event.payload).expect("JSON payload");
                (event.kind, payload["count"].to_string())
            })
            .collect();
        assert_eq!(
            counts,
            vec![(EventKind::ScoresChanged, "5".to_owned()), (EventKind::ScoresChanged, "3".to_owned())]
        );
        assert_eq!(events[1].sequence, events[0].sequence + 1, "numbered without gaps");
    }
}

/// Rescoring every few minutes must not add a history row each time: only
/// a score that changed is recorded, on both backends (PostgreSQL decides in
/// SQL, SQLite in Rust).
#[tokio::test]
async fn the_history_records_a_score_only_when_it_changed() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let lead = store.create_opportunity(new_opportunity("rescored", None)).await.expect("create");
        let t0 = (Utc::now() - Duration::days(3)).trunc_subsecs(0);
        let at = |minutes: i64| t0 + Duration::minutes(minutes);
        let day = 24 * 60;
        let mut flagged = score(&lead, 0.511, at(20));
        flagged.leak_flag = true;
        let later = |minutes: i64| LeadScoreRecord { scored_at: at(minutes), ..flagged.clone() };
        let mut new_model = later(day + 30);
        new_model.model_version = 4;
        let writes = [
            score(&lead, 0.50, at(0)),   // first: recorded
            score(&lead, 0.505, at(5)),  // moved 0.005: not
            score(&lead, 0.509, at(10)), // 0.009 from the recorded 0.50: not
            score(&lead, 0.511, at(15)), // 0.011 from it: recorded
            flagged.clone(),             // the flag: recorded
            later(25),                   // unchanged: not
            later(day + 20),             // unchanged, but a day on: recorded
            later(day + 25),             // not
            new_model.clone(),           // another model: recorded
        ];
        for write in &writes {
            store.write_scores(std::slice::from_ref(write)).await.expect("write");
        }
        let as_of = async |minutes: i64| store.lead_score(lead.id, Some(at(minutes))).await.expect("as of");
        let recorded = [(7, 0), (12, 0), (16, 3), (21, 4), (day + 1, 4), (day + 22, 6), (day + 28, 6), (day + 31, 8)];
        for (minutes, index) in recorded {
            assert_eq!(as_of(minutes).await, writes[index], "as of minute {minutes}: write {index}");
        }
        let current = store.lead_score(lead.id, None).await.expect("current");
        assert_eq!(current, new_model, "the current score is always the latest write");
        let moved =
            |p_advance: f64, minutes: i64| LeadScoreRecord { p_advance, scored_at: at(minutes), ..new_model.clone() };
        let drifted = moved(0.522, day + 40);
        store.write_scores(&[moved(0.519, day + 35)]).await.expect("drift below the step");
        store.write_scores(std::slice::from_ref(&drifted)).await.expect("drift past it");
        assert_eq!(as_of(day + 38).await, writes[8], "0.008 from the recorded 0.511 is not recorded");
        assert_eq!(as_of(day + 41).await, drifted, "drift adds up against the last recorded score");
    }
}

/// Current scores written before the history kept only changes have no
/// recorded score yet: their next score is recorded, then only changes.
#[tokio::test]
async fn scores_from_before_the_upgrade_are_recorded_at_their_next_write() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let lead = store.create_opportunity(new_opportunity("upgraded", None)).await.expect("create");
        let t0 = (Utc::now() - Duration::hours(1)).trunc_subsecs(0);
        let at = |minutes: i64| t0 + Duration::minutes(minutes);
        let writes = [score(&lead, 0.6, at(0)), score(&lead, 0.6, at(5)), score(&lead, 0.6, at(10))];
        store.write_scores(&writes[..1]).await.expect("before the upgrade");
        let db = store.connection();
        for statement in [
            "ALTER TABLE current_scores DROP COLUMN recorded_p_advance",
            "ALTER TABLE current_scores DROP COLUMN recorded_at",
            "DELETE FROM seaql_migrations WHERE version = 'm0007_record_score_changes'",
        ] {
            db.execute_unprepared(statement).await.expect(statement);
        }
        store.migrate().await.expect("migrate again");
        store.write_scores(&writes[1..2]).await.expect("first after");
        store.write_scores(&writes[2..]).await.expect("second after");
        for (minutes, index) in [(1, 0), (6, 1), (11, 1)] {
            let recorded = store.lead_score(lead.id, Some(at(minutes))).await.expect("as of");
            assert_eq!(recorded, writes[index], "as of minute {minutes}");
        }
    }
}

#[tokio::test]
async fn pruning_deletes_the_history_before_a_time_in_batches() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let lead = store.create_opportunity(new_opportunity("pruned", None)).await.expect("create");
        let now = Utc::now().trunc_subsecs(0);
        let writes = [
            score(&lead, 0.2, now - Duration::days(10)),
            score(&lead, 0.4, now - Duration::days(5)),
            score(&lead, 0.6, now - Duration::hours(1)),
        ];
        for write in &writes {
            store.write_scores(std::slice::from_ref(write)).await.expect("write");
        }
        let cut = now - Duration::days(2);
        let first = store.prune_score_history(cut, 1, 1).await.expect("prune one statement");
        assert_eq!(first, Pruned { deleted: 1, finished: false }, "stopped at its one statement of one row");
        let rest = store.prune_score_history(cut, 1, 10).await.expect("prune the rest");
        assert_eq!(rest, Pruned { deleted: 1, finished: true }, "the other older row, then a short statement");
        let gone = store.lead_score(lead.id, Some(now - Duration::days(4))).await.expect_err("pruned");
        assert!(matches!(gone, funnel_store::StoreError::NotFound { .. }), "{gone:?}");
        let kept = store.lead_score(lead.id, Some(now - Duration::minutes(30))).await.expect("kept");
        assert_eq!(kept, writes[2]);
        assert_eq!(store.lead_score(lead.id, None).await.expect("current"), writes[2]);
        let again = store.prune_score_history(cut, 100, 10).await.expect("again");
        assert_eq!(again, Pruned { deleted: 0, finished: true });
    }
}
