//! LogActivity and ListActivities.

use chrono::Duration;
use funnel_proto::v1::{self as pb, ActivityKind};
use tonic::Code;

use crate::support::{Running, ago, by, create, expect_invalid, expect_status, servers, timestamp};

#[tokio::test]
async fn activities_are_listed_in_the_order_they_occurred_one_page_at_a_time() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created_at = ago(Duration::days(10));
        let opportunity = pb::CreateOpportunityRequest {
            occurred_at: Some(timestamp(created_at)),
            ..crate::support::new_opportunity("Busy", "rep-1")
        };
        let opportunity = client.create_opportunity(opportunity).await.expect("create").into_inner();
        // Logged out of order, two at the same instant.
        let days = [5, 9, 1, 5, 3, 7, 2];
        let kinds = [ActivityKind::Call, ActivityKind::Email, ActivityKind::Meeting, ActivityKind::Note];
        let mut logged = Vec::new();
        for (index, days_ago) in days.iter().enumerate() {
            let request = pb::LogActivityRequest {
                opportunity_id: opportunity.id.clone(),
                kind: kinds[index % kinds.len()] as i32,
                occurred_at: Some(timestamp(ago(Duration::days(*days_ago)))),
                note: format!("activity {index}"),
                request_id: String::new(),
            };
            let activity = client.log_activity(by("rep-1", request)).await.expect("log activity").into_inner();
            assert_eq!(activity.actor, "rep-1");
            assert_eq!(activity.opportunity_id, opportunity.id);
            logged.push(activity);
        }

        let mut listed = Vec::new();
        let mut page_token = String::new();
        loop {
            let request =
                pb::ListActivitiesRequest { opportunity_id: opportunity.id.clone(), page_size: 3, page_token };
            let page = client.list_activities(request).await.expect("list activities").into_inner();
            assert!(page.activities.len() <= 3);
            listed.extend(page.activities);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let mut expected = logged.clone();
        expected.sort_by(|a, b| {
            let key = |activity: &pb::Activity| activity.occurred_at.map(|at| (at.seconds, at.nanos));
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        assert_eq!(listed, expected, "every activity once, oldest first");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn logging_an_activity_checks_its_kind_time_and_opportunity() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Checked", "rep-1").await;
        let request = |kind: ActivityKind| pb::LogActivityRequest {
            opportunity_id: created.id.clone(),
            kind: kind as i32,
            ..Default::default()
        };
        expect_invalid(client.log_activity(request(ActivityKind::Unspecified)).await, "kind", "kind: is required");
        let unknown_kind = pb::LogActivityRequest { kind: 99, ..request(ActivityKind::Call) };
        expect_invalid(client.log_activity(unknown_kind).await, "kind", "99 is not an ActivityKind");
        let before_creation = pb::LogActivityRequest {
            occurred_at: Some(timestamp(ago(Duration::days(1)))),
            ..request(ActivityKind::Call)
        };
        expect_invalid(
            client.log_activity(before_creation).await,
            "occurred_at",
            "is before the opportunity was created",
        );
        let in_the_future = pb::LogActivityRequest {
            occurred_at: Some(timestamp(ago(Duration::days(-1)))),
            ..request(ActivityKind::Call)
        };
        expect_invalid(client.log_activity(in_the_future).await, "occurred_at", "is in the future");
        let unknown =
            pb::LogActivityRequest { opportunity_id: uuid::Uuid::now_v7().to_string(), ..request(ActivityKind::Call) };
        expect_status(client.log_activity(unknown).await, Code::NotFound, "not found");
        let malformed = pb::LogActivityRequest { opportunity_id: "42".to_owned(), ..request(ActivityKind::Call) };
        expect_invalid(client.log_activity(malformed).await, "opportunity_id", "\"42\" is not a UUID");
        let too_long = pb::LogActivityRequest { note: "x".repeat(4097), ..request(ActivityKind::Note) };
        expect_invalid(client.log_activity(too_long).await, "note", "must be at most 4096 bytes, got 4097");

        let once = pb::LogActivityRequest { request_id: "call-1".to_owned(), ..request(ActivityKind::Call) };
        let first = client.log_activity(once.clone()).await.expect("log").into_inner();
        let retry = client.log_activity(once).await.expect("retry").into_inner();
        assert_eq!(retry, first, "a retry with the same request_id returns the first activity");
        let listed = client
            .list_activities(pb::ListActivitiesRequest { opportunity_id: created.id.clone(), ..Default::default() })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.activities, [first], "and logs it once");
        server.shutdown().await;
    }
}
