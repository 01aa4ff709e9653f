//! Retries and races: idempotent creates and optimistic concurrency.

use funnel_proto::v1 as pb;
use tonic::Code;

use crate::support::{Running, by, create, history, new_opportunity, servers};

#[tokio::test]
async fn a_create_retried_with_the_same_request_id_returns_the_first_result_and_creates_one_row() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let request = pb::CreateOpportunityRequest {
            request_id: "7f1c-create-once".to_owned(),
            external_id: "crm-77".to_owned(),
            ..new_opportunity("Retried", "retry-owner")
        };
        let first = client.create_opportunity(by("alice", request.clone())).await.expect("create").into_inner();
        let retry = client.create_opportunity(by("alice", request)).await.expect("retry").into_inner();
        assert_eq!(retry, first, "the retry returns the first result");

        let listed = client
            .list_opportunities(pb::ListOpportunitiesRequest { owner: "retry-owner".to_owned(), ..Default::default() })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.opportunities, std::slice::from_ref(&first), "one row");
        assert_eq!(history(&mut client, &first.id).await.len(), 1, "one history row");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_moves_with_the_same_etag_let_exactly_one_through() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Contended", "rep-1").await;
        let targets = ["qualified", "committed", "transacted"];
        let mut calls = Vec::new();
        for index in 0..16 {
            let mut racer = server.client();
            let request = pb::MoveOpportunityRequest {
                id: created.id.clone(),
                stage: targets[index % targets.len()].to_owned(),
                etag: created.etag.clone(),
                ..Default::default()
            };
            calls.push(tokio::spawn(async move { racer.move_opportunity(by(&format!("rep-{index}"), request)).await }));
        }
        let mut succeeded = Vec::new();
        let mut aborted = 0;
        for call in calls {
            match call.await.expect("the call task does not panic") {
                Ok(response) => succeeded.push(response.into_inner()),
                Err(status) if status.code() == Code::Aborted => {
                    assert!(status.message().contains("read it again"), "actionable message: {:?}", status.message());
                    aborted += 1;
                }
                Err(status) => panic!("a losing racer must be ABORTED, got {:?}: {}", status.code(), status.message()),
            }
        }
        assert_eq!(succeeded.len(), 1, "exactly one move succeeds");
        assert_eq!(aborted, 15, "the other fifteen are ABORTED");

        let rows = history(&mut client, &created.id).await;
        assert_eq!(rows.len(), 2, "the creation and exactly one move");
        assert_eq!(rows[1].to_stage, succeeded[0].stage);
        let fetched = client
            .get_opportunity(pb::GetOpportunityRequest { id: created.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, succeeded[0]);
        server.shutdown().await;
    }
}

/// Clients retry when a response is slow, so the retry may arrive while the
/// first attempt is still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_of_a_create_all_return_the_one_opportunity_created() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let request = pb::CreateOpportunityRequest {
            request_id: "concurrent-retry".to_owned(),
            external_id: "crm-retry".to_owned(),
            ..new_opportunity("Retried concurrently", "retry-owner")
        };
        let mut attempts = Vec::new();
        for _ in 0..8 {
            let mut client = server.client();
            let request = request.clone();
            attempts.push(tokio::spawn(async move { client.create_opportunity(request).await }));
        }
        let mut ids = Vec::new();
        for attempt in attempts {
            let created = attempt.await.expect("no panic").expect("every retry succeeds").into_inner();
            ids.push(created.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "all retries return the same opportunity");
        server.shutdown().await;
    }
}
