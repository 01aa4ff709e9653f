//! Example building: labels, snapshots and no look-ahead.

use funnel_scoring::{
    ACTIVITIES_7D, ACTIVITIES_30D, BACKWARD_MOVES_BEFORE, DAYS_IN_STAGE, DAYS_SINCE_ACTIVITY, Error, Example,
    MOVES_BEFORE, SnapshotPlan, Status, activities_needed_since, build_examples, current_row,
};

use crate::support::{activity, day, move_to, opportunity, stages};

const PLAN: SnapshotPlan = SnapshotPlan { every_days: 7, max_per_visit: 8 };

fn numeric(example: &Example, name: &str) -> Option<f64> {
    example.row.numeric.get(name).copied().flatten()
}

#[test]
fn an_activity_after_the_snapshot_is_not_counted() {
    let mut history = opportunity("o1", "web", "lead", 0.0);
    activity(&mut history, 3.0);
    activity(&mut history, 12.0); // after both snapshots' windows start
    move_to(&mut history, 13.0, "qualified", Status::Open);
    move_to(&mut history, 14.0, "qualified", Status::Leaked);

    let examples = build_examples(&[history], &stages(), PLAN, day(100.0)).expect("examples");
    let lead: Vec<&Example> = examples.iter().filter(|e| e.stage == "lead").collect();
    assert_eq!(lead.len(), 2, "snapshots on days 0 and 7 of a 13-day visit");

    // Day 0: nothing has happened yet, although the visit advanced later.
    assert_eq!(numeric(lead[0], ACTIVITIES_30D), Some(0.0));
    assert_eq!(numeric(lead[0], DAYS_SINCE_ACTIVITY), None);
    // Day 7: the day-3 activity counts, the day-12 one does not.
    assert_eq!(numeric(lead[1], ACTIVITIES_7D), Some(1.0));
    assert_eq!(numeric(lead[1], ACTIVITIES_30D), Some(1.0));
    assert_eq!(numeric(lead[1], DAYS_SINCE_ACTIVITY), Some(4.0));
    assert_eq!(numeric(lead[1], DAYS_IN_STAGE), Some(7.0));
    assert!(lead.iter().all(|example| example.advanced));
    assert!(lead.iter().all(|example| example.resolved_at == day(13.0)));
}

#[test]
fn labels_follow_how_each_visit_ended_including_reopenings() {
    let mut history = opportunity("o1", "web", "lead", 0.0);
    move_to(&mut history, 2.0, "qualified", Status::Open); // lead: advanced
    move_to(&mut history, 4.0, "lead", Status::Open); // qualified: moved back
    move_to(&mut history, 6.0, "lead", Status::Leaked); // lead: leaked
    move_to(&mut history, 8.0, "lead", Status::Open); // reopened: new visit
    move_to(&mut history, 9.0, "won", Status::Won); // lead: advanced

    let examples = build_examples(&[history], &stages(), PLAN, day(50.0)).expect("examples");
    let outcomes: Vec<(&str, bool)> =
        examples.iter().map(|example| (example.stage.as_str(), example.advanced)).collect();
    assert_eq!(outcomes, [("lead", true), ("qualified", false), ("lead", false), ("lead", true)]);
    // The last visit came after two moves, one of them backward.
    assert_eq!(numeric(&examples[3], MOVES_BEFORE), Some(2.0));
    assert_eq!(numeric(&examples[3], BACKWARD_MOVES_BEFORE), Some(1.0));
}

#[test]
fn snapshots_stop_at_the_cap_and_open_visits_are_not_labelled() {
    let mut long = opportunity("long", "web", "lead", 0.0);
    move_to(&mut long, 200.0, "qualified", Status::Open); // then stays open
    let examples = build_examples(&[long.clone()], &stages(), PLAN, day(300.0)).expect("examples");
    assert_eq!(examples.len(), 8, "capped, and the open qualified visit gives none");
    assert_eq!(examples[7].snapshot_at, day(49.0));

    let current = current_row(&long, &stages(), day(300.0)).expect("open");
    assert_eq!(current.stage, "qualified");
    assert!((current.days_in_stage - 100.0).abs() < 1e-9);
}

#[test]
fn records_after_now_are_ignored() {
    let mut history = opportunity("o1", "web", "lead", 0.0);
    move_to(&mut history, 10.0, "qualified", Status::Open);
    let before = build_examples(&[history.clone()], &stages(), PLAN, day(5.0)).expect("examples");
    assert!(before.is_empty(), "on day 5 the lead visit had not ended");
    let current = current_row(&history, &stages(), day(5.0)).expect("open");
    assert_eq!(current.stage, "lead");
}

#[test]
fn closed_or_empty_opportunities_cannot_be_scored() {
    let mut history = opportunity("o1", "web", "lead", 0.0);
    move_to(&mut history, 1.0, "lead", Status::Leaked);
    let closed = current_row(&history, &stages(), day(2.0));
    assert!(matches!(closed, Err(Error::NotOpen { .. })));

    history.transitions.clear();
    let empty = current_row(&history, &stages(), day(2.0));
    assert!(matches!(empty, Err(Error::EmptyHistory { .. })));
    assert!(matches!(build_examples(&[], &[], PLAN, day(0.0)), Err(Error::NoStages)));
}

#[test]
fn an_open_row_needs_only_the_activities_since_the_window_and_the_latest_before() {
    let now = day(400.0);
    let since = activities_needed_since(now);
    assert!(since < day(370.0), "the window reaches at least 30 days back");
    // Activities right on each window's edge, a second either side of it,
    // long before, and after now.
    let edges = [-7.0, -30.0];
    let mut offsets = vec![1.0, 200.0, 350.0, 399.5, 400.5, 410.0];
    for edge in edges {
        for seconds in [-1.0, 0.0, 1.0] {
            offsets.push(400.0 + edge + seconds / 86_400.0);
        }
    }
    for skip in 0..offsets.len() {
        let mut full = opportunity("o1", "web", "lead", 0.0);
        move_to(&mut full, 100.0, "qualified", Status::Open);
        for (index, at) in offsets.iter().enumerate() {
            if index != skip {
                activity(&mut full, *at);
            }
        }
        full.activities.sort_by_key(|record| record.occurred_at);
        // What rescoring reads: from `since` on, and the latest before it.
        let mut trimmed = full.clone();
        let latest_before = trimmed.activities.iter().rposition(|record| record.occurred_at < since);
        let keep_from = latest_before.unwrap_or(0);
        trimmed.activities.drain(..keep_from);
        assert!(trimmed.activities.len() < full.activities.len());

        let want = current_row(&full, &stages(), now).expect("open");
        let got = current_row(&trimmed, &stages(), now).expect("open");
        assert_eq!(got.row, want.row, "without the activity at offset {}", offsets[skip]);
    }

    // With none in the window, the latest before it still gives the days since.
    let mut quiet = opportunity("o2", "web", "lead", 0.0);
    activity(&mut quiet, 10.0);
    activity(&mut quiet, 200.0);
    let mut trimmed = quiet.clone();
    trimmed.activities.remove(0);
    let want = current_row(&quiet, &stages(), now).expect("open");
    assert_eq!(want.row.numeric[DAYS_SINCE_ACTIVITY], Some(200.0));
    assert_eq!(current_row(&trimmed, &stages(), now).expect("open").row, want.row);
}
