//! The life of an opportunity: through the funnel, leaked, reopened, and the
//! history that records it.

use chrono::Duration;
use funnel_proto::v1::{self as pb, OpportunityStatus, TransitionKind};
use tonic::Code;

use crate::support::{Running, ago, by, create, expect_invalid, expect_status, history, move_to, servers, timestamp};

#[tokio::test]
async fn an_opportunity_is_won_after_passing_through_all_four_default_stages() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Acme renewal", "rep-1").await;
        assert_eq!(created.pipeline, "sales");
        assert_eq!(created.stage, "prospect");
        assert_eq!(created.status, OpportunityStatus::Open as i32);
        assert_eq!(created.closed_at, None);
        assert_eq!(created.stage_entered_at, created.created_at);

        let qualified = move_to(&mut client, &created.id, "qualified").await;
        assert_eq!((qualified.stage.as_str(), qualified.status), ("qualified", OpportunityStatus::Open as i32));
        let committed = move_to(&mut client, &created.id, "committed").await;
        assert_eq!((committed.stage.as_str(), committed.status), ("committed", OpportunityStatus::Open as i32));
        let won = move_to(&mut client, &created.id, "transacted").await;
        assert_eq!((won.stage.as_str(), won.status), ("transacted", OpportunityStatus::Won as i32));
        assert!(won.closed_at.is_some(), "a won opportunity has closed_at");
        assert_eq!(won.closed_at, won.stage_entered_at);
        assert_ne!(won.etag, created.etag);

        let fetched = client
            .get_opportunity(pb::GetOpportunityRequest { id: created.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, won, "what a move returns is what is stored");

        let kinds: Vec<i32> = history(&mut client, &created.id).await.iter().map(|row| row.kind).collect();
        let expected =
            [TransitionKind::Created, TransitionKind::Advanced, TransitionKind::Advanced, TransitionKind::Won];
        assert_eq!(kinds, expected.map(|kind| kind as i32));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn what_create_returns_is_what_is_stored() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Round trip", "rep-1").await;
        let fetched = client
            .get_opportunity(pb::GetOpportunityRequest { id: created.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, created);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn leaking_needs_a_reason_and_reopening_returns_to_the_stage_it_leaked_in() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Leaky", "rep-1").await;
        move_to(&mut client, &created.id, "qualified").await;

        let no_reason = pb::LeakOpportunityRequest { id: created.id.clone(), ..Default::default() };
        expect_invalid(client.leak_opportunity(no_reason).await, "reason", "reason: is required");

        let leak =
            pb::LeakOpportunityRequest { id: created.id.clone(), reason: "no budget".to_owned(), ..Default::default() };
        let leaked = client.leak_opportunity(leak).await.expect("leak").into_inner();
        assert_eq!((leaked.stage.as_str(), leaked.status), ("qualified", OpportunityStatus::Leaked as i32));
        assert_eq!(leaked.leak_reason, "no budget");
        assert!(leaked.closed_at.is_some());

        let leak_again = pb::LeakOpportunityRequest {
            id: created.id.clone(),
            reason: "still no budget".to_owned(),
            ..Default::default()
        };
        expect_status(
            client.leak_opportunity(leak_again).await,
            Code::FailedPrecondition,
            "the opportunity is leaked and cannot be leaked; reopen it first",
        );

        let reopen = pb::ReopenOpportunityRequest { id: created.id.clone(), ..Default::default() };
        let reopened = client.reopen_opportunity(reopen).await.expect("reopen").into_inner();
        assert_eq!((reopened.stage.as_str(), reopened.status), ("qualified", OpportunityStatus::Open as i32));
        assert_eq!(reopened.closed_at, None);
        assert_eq!(reopened.leak_reason, "");

        let reopen_open = pb::ReopenOpportunityRequest { id: created.id.clone(), ..Default::default() };
        expect_status(
            client.reopen_opportunity(reopen_open).await,
            Code::FailedPrecondition,
            "the opportunity is already open",
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_won_opportunity_reopens_where_it_was_won_from_or_where_asked_but_not_in_the_won_stage() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Won twice", "rep-1").await;
        move_to(&mut client, &created.id, "committed").await;
        move_to(&mut client, &created.id, "transacted").await;

        let into_won_stage = pb::ReopenOpportunityRequest {
            id: created.id.clone(),
            stage: "transacted".to_owned(),
            ..Default::default()
        };
        expect_invalid(
            client.reopen_opportunity(into_won_stage).await,
            "stage",
            "cannot reopen into the won stage transacted",
        );

        let by_default = pb::ReopenOpportunityRequest { id: created.id.clone(), ..Default::default() };
        let reopened = client.reopen_opportunity(by_default).await.expect("reopen").into_inner();
        assert_eq!((reopened.stage.as_str(), reopened.status), ("committed", OpportunityStatus::Open as i32));
        assert_eq!(reopened.closed_at, None);

        move_to(&mut client, &created.id, "transacted").await;
        let unknown_stage =
            pb::ReopenOpportunityRequest { id: created.id.clone(), stage: "nowhere".to_owned(), ..Default::default() };
        expect_invalid(client.reopen_opportunity(unknown_stage).await, "stage", "pipeline sales has no stage nowhere");
        let explicit =
            pb::ReopenOpportunityRequest { id: created.id.clone(), stage: "prospect".to_owned(), ..Default::default() };
        let reopened = client.reopen_opportunity(explicit).await.expect("reopen").into_inner();
        assert_eq!((reopened.stage.as_str(), reopened.status), ("prospect", OpportunityStatus::Open as i32));

        server.shutdown().await;
    }
}

/// The history is the scorer's training data: it must record exactly the
/// calls made, in order, with who made them and when.
#[tokio::test]
async fn the_history_is_exactly_the_sequence_of_calls() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let times: Vec<_> = (0..7).map(|step| ago(Duration::days(30 - step))).collect();
        let create_request = pb::CreateOpportunityRequest {
            occurred_at: Some(timestamp(times[0])),
            note: "inbound lead".to_owned(),
            ..crate::support::new_opportunity("History", "rep-1")
        };
        let created = client.create_opportunity(by("alice", create_request)).await.expect("create").into_inner();
        let id = created.id.clone();
        let move_request = |stage: &str, at: usize, note: &str| pb::MoveOpportunityRequest {
            id: id.clone(),
            stage: stage.to_owned(),
            occurred_at: Some(timestamp(times[at])),
            note: note.to_owned(),
            ..Default::default()
        };
        client.move_opportunity(by("bob", move_request("qualified", 1, "budget confirmed"))).await.expect("move");
        client.move_opportunity(by("alice", move_request("prospect", 2, ""))).await.expect("move back");
        client.move_opportunity(by("carol", move_request("committed", 3, ""))).await.expect("skip ahead");
        let leak = pb::LeakOpportunityRequest {
            id: id.clone(),
            reason: "went quiet".to_owned(),
            occurred_at: Some(timestamp(times[4])),
            note: "three calls unanswered".to_owned(),
            ..Default::default()
        };
        client.leak_opportunity(by("bob", leak)).await.expect("leak");
        let reopen = pb::ReopenOpportunityRequest {
            id: id.clone(),
            stage: "qualified".to_owned(),
            occurred_at: Some(timestamp(times[5])),
            ..Default::default()
        };
        client.reopen_opportunity(by("alice", reopen)).await.expect("reopen");
        let won = client
            .move_opportunity(by("dave", move_request("transacted", 6, "signed")))
            .await
            .expect("win")
            .into_inner();

        use OpportunityStatus::{Leaked, Open, Unspecified, Won};
        use TransitionKind::{Advanced, Created, Leaked as LeakedKind, MovedBack, Reopened, Won as WonKind};
        let expected = [
            ("", "prospect", Unspecified, Open, Created, "alice", "", "inbound lead"),
            ("prospect", "qualified", Open, Open, Advanced, "bob", "", "budget confirmed"),
            ("qualified", "prospect", Open, Open, MovedBack, "alice", "", ""),
            ("prospect", "committed", Open, Open, Advanced, "carol", "", ""),
            ("committed", "committed", Open, Leaked, LeakedKind, "bob", "went quiet", "three calls unanswered"),
            ("committed", "qualified", Leaked, Open, Reopened, "alice", "", ""),
            ("qualified", "transacted", Open, Won, WonKind, "dave", "", "signed"),
        ];
        let rows = history(&mut client, &id).await;
        assert_eq!(rows.len(), expected.len());
        for (index, (row, expected)) in rows.iter().zip(expected).enumerate() {
            let (from_stage, to_stage, from_status, to_status, kind, actor, reason, note) = expected;
            assert_eq!(row.sequence, index as i64 + 1);
            assert_eq!(row.opportunity_id, id);
            assert_eq!((row.from_stage.as_str(), row.to_stage.as_str()), (from_stage, to_stage), "row {index}");
            assert_eq!((row.from_status, row.to_status), (from_status as i32, to_status as i32), "row {index}");
            assert_eq!(row.kind, kind as i32, "row {index}");
            assert_eq!(row.actor, actor, "row {index}");
            assert_eq!((row.reason.as_str(), row.note.as_str()), (reason, note), "row {index}");
            assert_eq!(row.occurred_at, Some(timestamp(times[index])), "row {index}");
            assert!(row.recorded_at.is_some(), "row {index} has recorded_at");
        }
        // The current state is the replay of that history.
        assert_eq!(won.created_at, Some(timestamp(times[0])));
        assert_eq!(won.stage_entered_at, Some(timestamp(times[6])));
        assert_eq!(won.closed_at, Some(timestamp(times[6])));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_anonymous_caller_is_recorded_as_anonymous() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = client
            .create_opportunity(crate::support::new_opportunity("No actor", "rep-1"))
            .await
            .expect("create")
            .into_inner();
        let rows = history(&mut client, &created.id).await;
        assert_eq!(rows[0].actor, "anonymous");
        server.shutdown().await;
    }
}
