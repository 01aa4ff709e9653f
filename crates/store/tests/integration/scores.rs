//! A batch of scores lands whole: appended to the history, upserted as the
//! current scores and announced in the feed, on both backends.

use chrono::{Duration, SubsecRound, Utc};
use funnel_store::{EventFilter, EventKind, LeadScoreRecord, ScoreFactor, ScoreFilter};
use funnel_testkit::backends;

use crate::support::new_opportunity;

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
        let mut opportunities = Vec::new();
        for n in 0..5 {
            opportunities
                .push(store.create_opportunity(new_opportunity(&format!("lead {n}"), None)).await.expect("create"));
        }
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
