//! GetFunnelReport and GetMovementStats against a small history whose
//! numbers are worked out by hand below, on SQLite and PostgreSQL.
//!
//! Pipeline `demo-funnel`: lead (rot after 10 days) -> demo -> proposal ->
//! won. T0 is 100 days ago; "d" is a day. Owners: ana has A, B, C; ben has
//! D, E, F. Amounts in USD cents.
//!
//! | opp | history                                                            | now        |
//! |-----|--------------------------------------------------------------------|------------|
//! | A   | lead T0, demo +2d, proposal +5d, won +9d                           | won        |
//! | B   | lead +1d, demo +4d, leaked in demo +10d ("no budget")              | leaked     |
//! | C   | lead +2d, leaked in lead +3d ("no response")                       | leaked     |
//! | D   | lead +3d, demo +4d, proposal +6d, back to demo +8d                 | open, demo |
//! | E   | lead +4d                                                           | open, lead |
//! | F   | lead +5d, demo +6d, leaked +7d ("no budget"), reopened in demo     |            |
//! |     | +20d, proposal +22d, won +30d                                      | won        |

use chrono::{DateTime, Duration, Utc};
use funnel_domain::OpportunityId;
use funnel_proto::v1 as pb;
use funnel_store::LeadScoreRecord;
use tonic::Code;

use crate::support::{Client, Running, ago, by, expect_invalid, expect_status, servers, timestamp};

const PIPELINE: &str = "demo-funnel";
const DAY_SECONDS: i64 = 86_400;

struct History {
    t0: DateTime<Utc>,
    ids: Vec<String>,
}

fn day(t0: DateTime<Utc>, days: i64) -> Option<prost_types::Timestamp> {
    Some(timestamp(t0 + Duration::days(days)))
}

fn days(value: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: value * DAY_SECONDS, nanos: 0 })
}

async fn create(
    client: &mut Client,
    title: &str,
    owner: &str,
    amount: i64,
    at: Option<prost_types::Timestamp>,
) -> String {
    let request = pb::CreateOpportunityRequest {
        pipeline: PIPELINE.to_owned(),
        title: title.to_owned(),
        owner: owner.to_owned(),
        source: "referral".to_owned(),
        amount: Some(pb::Money { currency_code: "USD".to_owned(), amount_minor: amount }),
        occurred_at: at,
        ..Default::default()
    };
    client.create_opportunity(by(owner, request)).await.expect("create").into_inner().id
}

async fn move_to(client: &mut Client, id: &str, stage: &str, at: Option<prost_types::Timestamp>) {
    let request = pb::MoveOpportunityRequest {
        id: id.to_owned(),
        stage: stage.to_owned(),
        occurred_at: at,
        ..Default::default()
    };
    client.move_opportunity(by("alice", request)).await.expect("move");
}

async fn leak(client: &mut Client, id: &str, reason: &str, at: Option<prost_types::Timestamp>) {
    let request = pb::LeakOpportunityRequest {
        id: id.to_owned(),
        reason: reason.to_owned(),
        occurred_at: at,
        ..Default::default()
    };
    client.leak_opportunity(by("alice", request)).await.expect("leak");
}

async fn build_history(client: &mut Client) -> History {
    let stage = |key: &str, rot_after_days: Option<u32>| pb::Stage {
        key: key.to_owned(),
        display_name: String::new(),
        rot_after_days,
    };
    let pipeline = pb::CreatePipelineRequest {
        name: PIPELINE.to_owned(),
        stages: vec![stage("lead", Some(10)), stage("demo", None), stage("proposal", None), stage("won", None)],
        ..Default::default()
    };
    client.create_pipeline(pipeline).await.expect("create pipeline");
    let t0 = ago(Duration::days(100));
    let a = create(client, "A", "ana", 1_000, day(t0, 0)).await;
    let b = create(client, "B", "ana", 2_000, day(t0, 1)).await;
    let c = create(client, "C", "ana", 3_000, day(t0, 2)).await;
    let d = create(client, "D", "ben", 4_000, day(t0, 3)).await;
    let e = create(client, "E", "ben", 5_000, day(t0, 4)).await;
    let f = create(client, "F", "ben", 6_000, day(t0, 5)).await;
    move_to(client, &a, "demo", day(t0, 2)).await;
    move_to(client, &a, "proposal", day(t0, 5)).await;
    move_to(client, &a, "won", day(t0, 9)).await;
    move_to(client, &b, "demo", day(t0, 4)).await;
    leak(client, &b, "no budget", day(t0, 10)).await;
    leak(client, &c, "no response", day(t0, 3)).await;
    move_to(client, &d, "demo", day(t0, 4)).await;
    move_to(client, &d, "proposal", day(t0, 6)).await;
    move_to(client, &d, "demo", day(t0, 8)).await;
    move_to(client, &f, "demo", day(t0, 6)).await;
    leak(client, &f, "no budget", day(t0, 7)).await;
    let reopen = pb::ReopenOpportunityRequest {
        id: f.clone(),
        stage: "demo".to_owned(),
        occurred_at: day(t0, 20),
        ..Default::default()
    };
    client.reopen_opportunity(by("alice", reopen)).await.expect("reopen");
    move_to(client, &f, "proposal", day(t0, 22)).await;
    move_to(client, &f, "won", day(t0, 30)).await;
    History { t0, ids: vec![a, b, c, d, e, f] }
}

/// E is scored with a 25% win estimate: its weighted amount is 5,000 x 0.25.
fn score_of_e(history: &History) -> LeadScoreRecord {
    LeadScoreRecord {
        opportunity_id: OpportunityId::parse("id", &history.ids[4]).expect("a service id"),
        pipeline: PIPELINE.to_owned(),
        stage: "lead".to_owned(),
        owner: "ben".to_owned(),
        title: "E".to_owned(),
        model_version: 0,
        p_advance: 0.5,
        p_win: 0.25,
        leak_flag: false,
        reason_codes: vec![],
        factors_down: vec![],
        factors_up: vec![],
        days_in_stage: 96.0,
        scored_at: Utc::now(),
    }
}

fn report_request() -> pb::GetFunnelReportRequest {
    pb::GetFunnelReportRequest { pipeline: PIPELINE.to_owned(), ..Default::default() }
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-9, "{what}: {actual} != {expected}");
}

#[tokio::test]
async fn the_funnel_report_equals_the_hand_computed_example() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let history = build_history(&mut client).await;
        database.store().await.write_scores(&[score_of_e(&history)]).await.expect("write a score");

        let report = client.get_funnel_report(report_request()).await.expect("report").into_inner();
        // Now: A and F won, B and C leaked, D and E open.
        assert_eq!((report.opportunities, report.won, report.leaked, report.open), (6, 2, 2, 2));
        // won / (won + leaked) = 2 / 4.
        assert_close(report.win_rate, 0.5, "win rate");
        // Creation to won: A 9d, F 30d - 5d = 25d; nearest-rank median of
        // [9, 25] is rank ceil(2/2) = 1: 9 days.
        assert_eq!(report.median_time_to_win, days(9));

        let [lead, demo, proposal, won] = report.stages.as_slice() else { panic!("four stages: {report:?}") };
        // Furthest stage: A won, B demo, C lead, D proposal, E lead, F won.
        // reached: lead 6, demo 4 (A B D F), proposal 3 (A D F), won 2 (A F).
        assert_eq!([lead.reached, demo.reached, proposal.reached, won.reached], [6, 4, 3, 2]);
        assert_close(lead.conversion_to_next, 4.0 / 6.0, "lead -> demo");
        assert_close(demo.conversion_to_next, 3.0 / 4.0, "demo -> proposal");
        assert_close(proposal.conversion_to_next, 2.0 / 3.0, "proposal -> won");
        assert_close(won.conversion_to_next, 0.0, "after won");
        assert_close(proposal.cumulative_conversion, 3.0 / 6.0, "cumulative to proposal");
        assert_close(won.cumulative_conversion, 2.0 / 6.0, "cumulative to won");

        // Visits of lead: A adv 2d, B adv 3d, C leaked 1d, D adv 1d, E open,
        // F adv 1d: entered 6 = 4 advanced + 1 leaked + 1 open.
        assert_eq!((lead.entered, lead.advanced, lead.moved_back, lead.leaked, lead.still_open), (6, 4, 0, 1, 1));
        assert_close(lead.leak_rate, 1.0 / 6.0, "lead leak rate");
        // Advance times sorted [1, 1, 2, 3]: median rank 2 = 1d, p90 rank
        // ceil(3.6) = 4 = 3d.
        let lead_advance = lead.time_to_advance.expect("advance times");
        assert_eq!((lead_advance.count, lead_advance.median, lead_advance.p90), (4, days(1), days(3)));
        assert_eq!(lead.leak_reasons, [pb::LeakReasonCount { reason: "no response".to_owned(), count: 1 }]);
        // E has been open in lead for 96 days, past its 10-day rot point.
        assert_eq!(lead.stale, 1);
        assert_eq!(lead.rot_point, days(10));
        assert_eq!(lead.rot_point_source, pb::RotPointSource::Configured as i32);
        assert_eq!(
            lead.open_amount,
            [pb::MoneySum { currency_code: "USD".to_owned(), amount_minor: 5_000, opportunities: 1 }]
        );
        assert_eq!(
            lead.weighted_open_amount,
            [pb::MoneySum { currency_code: "USD".to_owned(), amount_minor: 1_250, opportunities: 1 }]
        );

        // Visits of demo: A adv 3d, B leaked 6d, D adv 2d, D open again (moved
        // back), F leaked 1d, F adv 2d (after reopening): 6 = 3 + 2 + 1.
        assert_eq!((demo.entered, demo.advanced, demo.moved_back, demo.leaked, demo.still_open), (6, 3, 0, 2, 1));
        assert_close(demo.leak_rate, 2.0 / 6.0, "demo leak rate");
        // Advance [2, 2, 3]: median rank 2 = 2d, p90 rank 3 = 3d. Leak [1, 6]:
        // median rank 1 = 1d, p90 rank 2 = 6d.
        let demo_advance = demo.time_to_advance.expect("advance times");
        assert_eq!((demo_advance.count, demo_advance.median, demo_advance.p90), (3, days(2), days(3)));
        let demo_leak = demo.time_to_leak.expect("leak times");
        assert_eq!((demo_leak.count, demo_leak.median, demo_leak.p90), (2, days(1), days(6)));
        assert_eq!(demo.leak_reasons, [pb::LeakReasonCount { reason: "no budget".to_owned(), count: 2 }]);
        assert_eq!(demo.stale, 0, "demo has no rot point");
        assert_eq!(demo.rot_point, None);
        // D is open in demo, unscored: it adds nothing to the weighted amount.
        assert_eq!(
            demo.open_amount,
            [pb::MoneySum { currency_code: "USD".to_owned(), amount_minor: 4_000, opportunities: 1 }]
        );
        assert_eq!(
            demo.weighted_open_amount,
            [pb::MoneySum { currency_code: "USD".to_owned(), amount_minor: 0, opportunities: 1 }]
        );

        // Visits of proposal: A won after 4d, D moved back after 2d, F won
        // after 8d. Advance [4, 8]: median rank 1 = 4d, p90 rank 2 = 8d.
        assert_eq!((proposal.entered, proposal.advanced, proposal.moved_back, proposal.leaked), (3, 2, 1, 0));
        let proposal_advance = proposal.time_to_advance.expect("advance times");
        assert_eq!((proposal_advance.median, proposal_advance.p90), (days(4), days(8)));
        assert_eq!((won.entered, won.still_open), (2, 0));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_report_windows_and_filters_select_the_expected_opportunities() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let history = build_history(&mut client).await;
        let t0 = history.t0;

        // ben's D, E, F: reached lead 3, demo 2 (D F), proposal 2, won 1 (F).
        let request = pb::GetFunnelReportRequest { owner: "ben".to_owned(), ..report_request() };
        let report = client.get_funnel_report(request).await.expect("report").into_inner();
        let reached: Vec<i64> = report.stages.iter().map(|stage| stage.reached).collect();
        assert_eq!(reached, [3, 2, 2, 1]);
        assert_close(report.stages[0].conversion_to_next, 2.0 / 3.0, "lead -> demo for ben");

        // Created from T0+2d on: C, D, E, F.
        let request = pb::GetFunnelReportRequest { start: day(t0, 2), ..report_request() };
        let report = client.get_funnel_report(request).await.expect("report").into_inner();
        assert_eq!((report.opportunities, report.won, report.leaked, report.open), (4, 1, 1, 2));

        // History rows in [T0+20d, T0+40d): only F's reopening, move and win.
        let request = pb::GetFunnelReportRequest {
            start: day(t0, 20),
            end: day(t0, 40),
            mode: pb::ReportWindowMode::Activity as i32,
            ..report_request()
        };
        let report = client.get_funnel_report(request).await.expect("report").into_inner();
        assert_eq!((report.opportunities, report.won), (1, 1));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn movement_stats_equal_the_hand_computed_example() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let history = build_history(&mut client).await;
        let t0 = history.t0;
        let pair =
            |from: &str, to: &str, count| pb::StageMove { from_stage: from.to_owned(), to_stage: to.to_owned(), count };

        // Rows in [T0+3d, T0+8d): created D E F; lead->demo B D F;
        // demo->proposal A D; leaked C F; D's move back at +8d is outside.
        // Open at +8d: A (8d old), B (7d), D (5d), E (4d): average 24/4 = 6d.
        let request = pb::GetMovementStatsRequest {
            pipeline: PIPELINE.to_owned(),
            start: day(t0, 3),
            end: day(t0, 8),
            ..Default::default()
        };
        let response = client.get_movement_stats(request.clone()).await.expect("stats").into_inner();
        let [all] = response.stats.as_slice() else { panic!("one line: {response:?}") };
        assert_eq!((all.created, all.won, all.leaked, all.reopened), (3, 0, 2, 0));
        assert_eq!(all.advanced, [pair("lead", "demo", 3), pair("demo", "proposal", 2)]);
        assert!(all.moved_back.is_empty());
        assert_eq!((all.open_at_end, all.average_open_age), (4, days(6)));

        // Per owner. ana: B lead->demo, A demo->proposal, C leaked; open A 8d,
        // B 7d (7.5d). ben: created 3, D F lead->demo, D demo->proposal, F
        // leaked; open D 5d, E 4d (4.5d).
        let response = client
            .get_movement_stats(pb::GetMovementStatsRequest { by_owner: true, ..request })
            .await
            .expect("stats by owner")
            .into_inner();
        let [ana, ben] = response.stats.as_slice() else { panic!("two lines: {response:?}") };
        assert_eq!((ana.owner.as_str(), ana.created, ana.leaked, ana.open_at_end), ("ana", 0, 1, 2));
        assert_eq!(ana.advanced, [pair("lead", "demo", 1), pair("demo", "proposal", 1)]);
        assert_eq!(
            ana.average_open_age,
            Some(prost_types::Duration { seconds: 7 * DAY_SECONDS + DAY_SECONDS / 2, nanos: 0 })
        );
        assert_eq!((ben.owner.as_str(), ben.created, ben.leaked, ben.open_at_end), ("ben", 3, 1, 2));
        assert_eq!(ben.advanced, [pair("lead", "demo", 2), pair("demo", "proposal", 1)]);
        assert_eq!(
            ben.average_open_age,
            Some(prost_types::Duration { seconds: 4 * DAY_SECONDS + DAY_SECONDS / 2, nanos: 0 })
        );

        // F's reopening (+20d) and both wins (+9d, +30d) over the whole time.
        let request =
            pb::GetMovementStatsRequest { pipeline: PIPELINE.to_owned(), start: day(t0, -1), ..Default::default() };
        let response = client.get_movement_stats(request).await.expect("stats").into_inner();
        assert_eq!((response.stats[0].won, response.stats[0].reopened, response.stats[0].created), (2, 1, 6));
        assert_eq!(response.stats[0].moved_back, [pair("proposal", "demo", 1)]);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn bad_report_requests_are_rejected_with_the_field_or_not_found() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let unknown = pb::GetFunnelReportRequest { pipeline: "nope".to_owned(), ..Default::default() };
        expect_status(client.get_funnel_report(unknown).await, Code::NotFound, "pipeline nope not found");
        let backwards = pb::GetFunnelReportRequest {
            pipeline: "sales".to_owned(),
            start: Some(timestamp(ago(Duration::days(1)))),
            end: Some(timestamp(ago(Duration::days(2)))),
            ..Default::default()
        };
        expect_invalid(client.get_funnel_report(backwards).await, "end", "is not after start");
        let bad_mode = pb::GetFunnelReportRequest { pipeline: "sales".to_owned(), mode: 9, ..Default::default() };
        expect_invalid(client.get_funnel_report(bad_mode).await, "mode", "not a ReportWindowMode");
        let bad_time = pb::GetFunnelReportRequest {
            pipeline: "sales".to_owned(),
            start: Some(prost_types::Timestamp { seconds: -5, nanos: 0 }),
            ..Default::default()
        };
        expect_invalid(client.get_funnel_report(bad_time).await, "start", "not a valid timestamp");
        expect_invalid(client.get_funnel_report(pb::GetFunnelReportRequest::default()).await, "pipeline", "");
        let no_start = pb::GetMovementStatsRequest { pipeline: "sales".to_owned(), ..Default::default() };
        expect_invalid(client.get_movement_stats(no_start).await, "start", "is required");
        let unknown = pb::GetMovementStatsRequest {
            pipeline: "nope".to_owned(),
            start: Some(timestamp(ago(Duration::days(2)))),
            ..Default::default()
        };
        expect_status(client.get_movement_stats(unknown).await, Code::NotFound, "pipeline nope not found");
        // An empty pipeline reports zeros, not an error.
        let empty = client
            .get_funnel_report(pb::GetFunnelReportRequest { pipeline: "sales".to_owned(), ..Default::default() })
            .await
            .expect("report of an empty pipeline")
            .into_inner();
        assert_eq!((empty.opportunities, empty.win_rate, empty.stages.len()), (0, 0.0, 4));
        server.shutdown().await;
    }
}

/// The furthest stage is kept per opportunity; reordering stages must
/// recompute it, or "reached" would follow the old order.
#[tokio::test]
async fn reordering_stages_recomputes_how_far_each_opportunity_reached() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let stage = |key: &str| pb::Stage { key: key.to_owned(), display_name: String::new(), rot_after_days: None };
        let pipeline = pb::CreatePipelineRequest {
            name: "reorder".to_owned(),
            stages: vec![stage("a"), stage("b"), stage("c"), stage("won")],
            ..Default::default()
        };
        client.create_pipeline(pipeline).await.expect("create pipeline");
        let request = pb::CreateOpportunityRequest {
            pipeline: "reorder".to_owned(),
            title: "X".to_owned(),
            owner: "ana".to_owned(),
            ..Default::default()
        };
        let id = client.create_opportunity(by("ana", request)).await.expect("create").into_inner().id;
        move_to(&mut client, &id, "b", None).await;
        move_to(&mut client, &id, "c", None).await;
        leak(&mut client, &id, "lost", None).await;
        let reached = |report: &pb::FunnelReport| report.stages.iter().map(|line| line.reached).collect::<Vec<_>>();
        let request = pb::GetFunnelReportRequest { pipeline: "reorder".to_owned(), ..Default::default() };
        let before = client.get_funnel_report(request.clone()).await.expect("report").into_inner();
        assert_eq!(reached(&before), [1, 1, 1, 0]);

        // c before b: X visited b, now the later of the two.
        let reorder = pb::UpdatePipelineRequest {
            name: "reorder".to_owned(),
            stages: vec![stage("a"), stage("c"), stage("b"), stage("won")],
            update_mask: Some(prost_types::FieldMask { paths: vec!["stages".to_owned()] }),
            ..Default::default()
        };
        client.update_pipeline(reorder).await.expect("reorder");
        let after = client.get_funnel_report(request.clone()).await.expect("report").into_inner();
        assert_eq!(after.stages.iter().map(|line| line.stage.as_str()).collect::<Vec<_>>(), ["a", "c", "b", "won"]);
        assert_eq!(reached(&after), [1, 1, 1, 0]);

        // Dropping b: X's furthest current stage is c.
        let drop_b = pb::UpdatePipelineRequest {
            name: "reorder".to_owned(),
            stages: vec![stage("a"), stage("c"), stage("won")],
            update_mask: Some(prost_types::FieldMask { paths: vec!["stages".to_owned()] }),
            ..Default::default()
        };
        client.update_pipeline(drop_b).await.expect("remove b");
        let dropped = client.get_funnel_report(request).await.expect("report").into_inner();
        assert_eq!(reached(&dropped), [1, 1, 0]);
    }
}
