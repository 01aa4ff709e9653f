//! Each class of bad input gets its precise status, never INTERNAL, and
//! INVALID_ARGUMENT names the field.

use std::collections::BTreeMap;

use chrono::Duration;
use funnel_proto::v1 as pb;
use prost_types::Timestamp;
use tonic::{Code, Request};

use crate::support::{
    Running, ago, create, expect_invalid, expect_status, move_to, new_opportunity, servers, timestamp,
};

#[tokio::test]
async fn an_unknown_id_is_not_found() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let id = uuid::Uuid::now_v7().to_string();
        let message = format!("opportunity {id} not found");
        expect_status(
            client.get_opportunity(pb::GetOpportunityRequest { id: id.clone() }).await,
            Code::NotFound,
            &message,
        );
        let move_request =
            pb::MoveOpportunityRequest { id: id.clone(), stage: "qualified".to_owned(), ..Default::default() };
        expect_status(client.move_opportunity(move_request).await, Code::NotFound, &message);
        let leak = pb::LeakOpportunityRequest { id: id.clone(), reason: "gone".to_owned(), ..Default::default() };
        expect_status(client.leak_opportunity(leak).await, Code::NotFound, &message);
        let reopen = pb::ReopenOpportunityRequest { id: id.clone(), ..Default::default() };
        expect_status(client.reopen_opportunity(reopen).await, Code::NotFound, &message);
        let history = pb::ListStageHistoryRequest { opportunity_id: id.clone(), ..Default::default() };
        expect_status(client.list_stage_history(history).await, Code::NotFound, &message);
        let activities = pb::ListActivitiesRequest { opportunity_id: id.clone(), ..Default::default() };
        expect_status(client.list_activities(activities).await, Code::NotFound, &message);
        let update = pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity { id: id.clone(), title: "t".to_owned(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".to_owned()] }),
        };
        expect_status(client.update_opportunity(update).await, Code::NotFound, &message);
        let unknown_pipeline =
            pb::CreateOpportunityRequest { pipeline: "nope".to_owned(), ..new_opportunity("t", "o") };
        expect_status(client.create_opportunity(unknown_pipeline).await, Code::NotFound, "pipeline nope not found");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_malformed_id_is_an_invalid_argument_naming_the_id_field() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let get = pb::GetOpportunityRequest { id: "not-a-uuid".to_owned() };
        expect_invalid(client.get_opportunity(get).await, "id", "id: \"not-a-uuid\" is not a UUID");
        expect_invalid(client.get_opportunity(pb::GetOpportunityRequest::default()).await, "id", "id: is required");
        let move_request =
            pb::MoveOpportunityRequest { id: "12".to_owned(), stage: "qualified".to_owned(), ..Default::default() };
        expect_invalid(client.move_opportunity(move_request).await, "id", "is not a UUID");
        let history = pb::ListStageHistoryRequest { opportunity_id: "x".to_owned(), ..Default::default() };
        expect_invalid(client.list_stage_history(history).await, "opportunity_id", "is not a UUID");
        let update = pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity { id: "x".to_owned(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".to_owned()] }),
        };
        expect_invalid(client.update_opportunity(update).await, "opportunity.id", "is not a UUID");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn out_of_range_values_are_invalid_arguments_naming_the_field() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let cases: Vec<(pb::CreateOpportunityRequest, &str, &str)> = vec![
            (
                pb::CreateOpportunityRequest {
                    amount: Some(pb::Money { currency_code: "USD".to_owned(), amount_minor: -1 }),
                    ..new_opportunity("t", "o")
                },
                "amount.amount_minor",
                "must not be negative",
            ),
            (
                pb::CreateOpportunityRequest {
                    amount: Some(pb::Money { currency_code: "usd".to_owned(), amount_minor: 1 }),
                    ..new_opportunity("t", "o")
                },
                "amount.currency_code",
                "is not an ISO 4217 code",
            ),
            (
                pb::CreateOpportunityRequest { stage: "Prospect".to_owned(), ..new_opportunity("t", "o") },
                "stage",
                "is not a stage key",
            ),
            (
                pb::CreateOpportunityRequest { stage: "nowhere".to_owned(), ..new_opportunity("t", "o") },
                "stage",
                "pipeline sales has no stage nowhere (its stages: prospect, qualified, committed, transacted)",
            ),
            (
                pb::CreateOpportunityRequest { stage: "transacted".to_owned(), ..new_opportunity("t", "o") },
                "stage",
                "transacted is the won stage",
            ),
            (
                pb::CreateOpportunityRequest { pipeline: "Sales!".to_owned(), ..new_opportunity("t", "o") },
                "pipeline",
                "is not a pipeline name",
            ),
            (
                pb::CreateOpportunityRequest { title: " ".to_owned(), ..new_opportunity("t", "o") },
                "title",
                "title: is required",
            ),
            (
                pb::CreateOpportunityRequest { owner: String::new(), ..new_opportunity("t", "o") },
                "owner",
                "owner: is required",
            ),
            (
                pb::CreateOpportunityRequest {
                    occurred_at: Some(Timestamp { seconds: 1, nanos: -5 }),
                    ..new_opportunity("t", "o")
                },
                "occurred_at",
                "is not a valid timestamp",
            ),
            (
                pb::CreateOpportunityRequest {
                    occurred_at: Some(Timestamp { seconds: i64::MAX, nanos: 0 }),
                    ..new_opportunity("t", "o")
                },
                "occurred_at",
                "is not a valid timestamp",
            ),
        ];
        for (request, field, message) in cases {
            expect_invalid(client.create_opportunity(request).await, field, message);
        }
        let listed = client.list_opportunities(pb::ListOpportunitiesRequest::default()).await.expect("list");
        assert!(listed.into_inner().opportunities.is_empty(), "no rejected request created anything");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn moving_a_closed_opportunity_is_a_failed_precondition() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let won = create(&mut client, "Done deal", "rep-1").await;
        move_to(&mut client, &won.id, "transacted").await;
        let request =
            pb::MoveOpportunityRequest { id: won.id.clone(), stage: "qualified".to_owned(), ..Default::default() };
        expect_status(
            client.move_opportunity(request).await,
            Code::FailedPrecondition,
            "the opportunity is won and cannot be moved; reopen it first",
        );
        let leak =
            pb::LeakOpportunityRequest { id: won.id.clone(), reason: "changed mind".to_owned(), ..Default::default() };
        expect_status(
            client.leak_opportunity(leak).await,
            Code::FailedPrecondition,
            "the opportunity is won and cannot be leaked",
        );

        let open = create(&mut client, "Open", "rep-1").await;
        let same_stage =
            pb::MoveOpportunityRequest { id: open.id.clone(), stage: "prospect".to_owned(), ..Default::default() };
        expect_status(client.move_opportunity(same_stage).await, Code::FailedPrecondition, "already in stage prospect");
        let unknown_stage =
            pb::MoveOpportunityRequest { id: open.id.clone(), stage: "nowhere".to_owned(), ..Default::default() };
        expect_invalid(client.move_opportunity(unknown_stage).await, "stage", "pipeline sales has no stage nowhere");
        let no_stage = pb::MoveOpportunityRequest { id: open.id.clone(), ..Default::default() };
        expect_invalid(client.move_opportunity(no_stage).await, "stage", "stage: is required");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_duplicate_external_id_already_exists() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let request =
            pb::CreateOpportunityRequest { external_id: "crm-1".to_owned(), ..new_opportunity("First", "rep-1") };
        client.create_opportunity(request).await.expect("first");
        let duplicate =
            pb::CreateOpportunityRequest { external_id: "crm-1".to_owned(), ..new_opportunity("Second", "rep-2") };
        expect_status(
            client.create_opportunity(duplicate).await,
            Code::AlreadyExists,
            "pipeline sales already has an opportunity with external_id \"crm-1\"",
        );

        let other =
            pb::CreateOpportunityRequest { external_id: "crm-2".to_owned(), ..new_opportunity("Other", "rep-2") };
        let other = client.create_opportunity(other).await.expect("other").into_inner();
        let clash = pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                id: other.id.clone(),
                external_id: "crm-1".to_owned(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["external_id".to_owned()] }),
        };
        expect_status(
            client.update_opportunity(clash).await,
            Code::AlreadyExists,
            "pipeline sales already has an opportunity with external_id \"crm-1\"",
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_occurred_at_in_the_future_or_before_the_last_change_is_an_invalid_argument() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let tomorrow = timestamp(ago(Duration::days(-1)));
        let future_create = pb::CreateOpportunityRequest { occurred_at: Some(tomorrow), ..new_opportunity("t", "o") };
        expect_invalid(client.create_opportunity(future_create).await, "occurred_at", "is in the future");

        let created_at = ago(Duration::days(5));
        let request =
            pb::CreateOpportunityRequest { occurred_at: Some(timestamp(created_at)), ..new_opportunity("t", "o") };
        let created = client.create_opportunity(request).await.expect("create").into_inner();
        let moved_at = ago(Duration::days(3));
        let request = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "qualified".to_owned(),
            occurred_at: Some(timestamp(moved_at)),
            ..Default::default()
        };
        client.move_opportunity(request).await.expect("move three days ago");

        let future_move = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "committed".to_owned(),
            occurred_at: Some(tomorrow),
            ..Default::default()
        };
        expect_invalid(client.move_opportunity(future_move).await, "occurred_at", "is in the future");
        let before_last_change = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "committed".to_owned(),
            occurred_at: Some(timestamp(ago(Duration::days(4)))),
            ..Default::default()
        };
        expect_invalid(
            client.move_opportunity(before_last_change).await,
            "occurred_at",
            "is before the opportunity's latest change",
        );
        let leak_too_early = pb::LeakOpportunityRequest {
            id: created.id.clone(),
            reason: "r".to_owned(),
            occurred_at: Some(timestamp(created_at)),
            ..Default::default()
        };
        expect_invalid(
            client.leak_opportunity(leak_too_early).await,
            "occurred_at",
            "is before the opportunity's latest change",
        );
        let rows = crate::support::history(&mut client, &created.id).await;
        assert_eq!(rows.len(), 2, "rejected changes leave no history");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_a_malformed_one_is_an_invalid_argument() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Etags", "rep-1").await;
        let moved = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "qualified".to_owned(),
            etag: created.etag.clone(),
            ..Default::default()
        };
        let moved = client.move_opportunity(moved).await.expect("move with the current etag").into_inner();

        let stale_move = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "committed".to_owned(),
            etag: created.etag.clone(),
            ..Default::default()
        };
        expect_status(client.move_opportunity(stale_move).await, Code::Aborted, "changed since it was read");
        let stale_leak = pb::LeakOpportunityRequest {
            id: created.id.clone(),
            reason: "r".to_owned(),
            etag: created.etag.clone(),
            ..Default::default()
        };
        expect_status(client.leak_opportunity(stale_leak).await, Code::Aborted, "changed since it was read");
        let stale_update = pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                id: created.id.clone(),
                title: "New".to_owned(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".to_owned()] }),
        };
        expect_status(client.update_opportunity(stale_update).await, Code::Aborted, "changed since it was read");
        let malformed = pb::MoveOpportunityRequest {
            id: created.id.clone(),
            stage: "committed".to_owned(),
            etag: "W/\"abc\"".to_owned(),
            ..Default::default()
        };
        expect_invalid(client.move_opportunity(malformed).await, "etag", "is not an etag this service returned");

        let current =
            pb::ReopenOpportunityRequest { id: created.id.clone(), etag: moved.etag.clone(), ..Default::default() };
        expect_status(client.reopen_opportunity(current).await, Code::FailedPrecondition, "already open");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn oversized_strings_and_maps_are_invalid_arguments_naming_the_field() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let many: BTreeMap<String, String> = (0..65).map(|index| (format!("k{index}"), "v".to_owned())).collect();
        let long_key_field = format!("attributes[{:?}]", "k".repeat(65));
        let cases: Vec<(pb::CreateOpportunityRequest, &str, &str)> = vec![
            (
                pb::CreateOpportunityRequest { title: "t".repeat(257), ..new_opportunity("t", "o") },
                "title",
                "must be at most 256 bytes, got 257",
            ),
            (
                pb::CreateOpportunityRequest { account: "a".repeat(10_000), ..new_opportunity("t", "o") },
                "account",
                "must be at most 256 bytes, got 10000",
            ),
            (
                pb::CreateOpportunityRequest { external_id: "e".repeat(129), ..new_opportunity("t", "o") },
                "external_id",
                "must be at most 128 bytes, got 129",
            ),
            (
                pb::CreateOpportunityRequest { request_id: "r".repeat(129), ..new_opportunity("t", "o") },
                "request_id",
                "must be at most 128 bytes",
            ),
            (
                pb::CreateOpportunityRequest { note: "n".repeat(4097), ..new_opportunity("t", "o") },
                "note",
                "must be at most 4096 bytes",
            ),
            (
                pb::CreateOpportunityRequest { title: "bell\u{7}".to_owned(), ..new_opportunity("t", "o") },
                "title",
                "must not contain control characters",
            ),
            (
                pb::CreateOpportunityRequest { attributes: many, ..new_opportunity("t", "o") },
                "attributes",
                "at most 64 entries, got 65",
            ),
            (
                pb::CreateOpportunityRequest {
                    attributes: BTreeMap::from([("industry".to_owned(), "x".repeat(1025))]),
                    ..new_opportunity("t", "o")
                },
                "attributes[\"industry\"]",
                "must be at most 1024 bytes",
            ),
            (
                pb::CreateOpportunityRequest {
                    attributes: BTreeMap::from([("k".repeat(65), "v".to_owned())]),
                    ..new_opportunity("t", "o")
                },
                &long_key_field,
                "must be at most 64 bytes",
            ),
            (
                pb::CreateOpportunityRequest {
                    attributes: BTreeMap::from([(String::new(), "v".to_owned())]),
                    ..new_opportunity("t", "o")
                },
                "attributes",
                "keys must not be empty",
            ),
        ];
        for (request, field, message) in cases {
            expect_invalid(client.create_opportunity(request).await, field, message);
        }
        let mut long_actor = Request::new(new_opportunity("t", "o"));
        long_actor.metadata_mut().insert(funnel_pipeline::ACTOR_METADATA, "a".repeat(300).parse().expect("ascii"));
        expect_invalid(client.create_opportunity(long_actor).await, "x-funnel-actor", "must be at most 256 bytes");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_bad_page_token_or_negative_page_size_is_an_invalid_argument() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Paged", "rep-1").await;
        move_to(&mut client, &created.id, "qualified").await;

        let garbage = pb::ListOpportunitiesRequest { page_token: "not a token!".to_owned(), ..Default::default() };
        expect_invalid(client.list_opportunities(garbage).await, "page_token", "is not a token this list returned");
        let negative = pb::ListOpportunitiesRequest { page_size: -1, ..Default::default() };
        expect_invalid(client.list_opportunities(negative).await, "page_size", "page_size: must not be negative");
        let negative = pb::ListPipelinesRequest { page_size: -5, ..Default::default() };
        expect_invalid(client.list_pipelines(negative).await, "page_size", "must not be negative");
        let negative =
            pb::ListStageHistoryRequest { opportunity_id: created.id.clone(), page_size: -1, ..Default::default() };
        expect_invalid(client.list_stage_history(negative).await, "page_size", "must not be negative");
        let negative =
            pb::ListActivitiesRequest { opportunity_id: created.id.clone(), page_size: i32::MIN, ..Default::default() };
        expect_invalid(client.list_activities(negative).await, "page_size", "must not be negative");
        let garbage = pb::ListPipelinesRequest { page_token: "%%%".to_owned(), ..Default::default() };
        expect_invalid(client.list_pipelines(garbage).await, "page_token", "is not a token this list returned");

        // A token of one list is no token of another.
        let first = client
            .list_stage_history(pb::ListStageHistoryRequest {
                opportunity_id: created.id.clone(),
                page_size: 1,
                page_token: String::new(),
            })
            .await
            .expect("history")
            .into_inner();
        assert!(!first.next_page_token.is_empty());
        let borrowed = pb::ListActivitiesRequest {
            opportunity_id: created.id.clone(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        };
        expect_invalid(client.list_activities(borrowed).await, "page_token", "was issued for different filters");
        let borrowed = pb::ListOpportunitiesRequest { page_token: first.next_page_token, ..Default::default() };
        expect_invalid(client.list_opportunities(borrowed).await, "page_token", "was issued for different filters");

        // A huge page size is clamped, not refused.
        let huge = pb::ListOpportunitiesRequest { page_size: i32::MAX, ..Default::default() };
        let page = client.list_opportunities(huge).await.expect("clamped").into_inner();
        assert_eq!(page.opportunities.len(), 1);
        server.shutdown().await;
    }
}

/// FNV-1a, as the service fingerprints the filters a token was issued for:
/// lets the test forge a token that passes the fingerprint check.
fn forged_token(scope: &str, key: &str) -> String {
    use base64::Engine;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in scope.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{hash:016x}|{key}"))
}

#[tokio::test]
async fn a_forged_page_token_is_an_invalid_argument_not_an_internal_error() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        for key in ["sales\0", "x".repeat(5000).as_str(), "\u{1}"] {
            let request = pb::ListPipelinesRequest { page_size: 1, page_token: forged_token("pipelines", key) };
            let status = client.list_pipelines(request).await.expect_err("a forged key is refused");
            assert_eq!(status.code(), Code::InvalidArgument, "key {key:?}: {}", status.message());
        }
        server.shutdown().await;
    }
}
