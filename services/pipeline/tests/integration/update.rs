//! UpdateOpportunity changes exactly the fields in the update mask.

use std::collections::BTreeMap;

use funnel_proto::v1 as pb;
use prost_types::FieldMask;

use crate::support::{Running, create, expect_invalid, history, servers};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|path| (*path).to_owned()).collect() })
}

#[tokio::test]
async fn an_update_changes_exactly_the_masked_fields_and_no_history() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Before", "rep-1").await;
        let changes = pb::Opportunity {
            id: created.id.clone(),
            etag: created.etag.clone(),
            title: "After".to_owned(),
            owner: "rep-2".to_owned(),
            amount: Some(pb::Money { currency_code: "EUR".to_owned(), amount_minor: 99 }),
            attributes: BTreeMap::from([("industry".to_owned(), "retail".to_owned())]),
            // Not in the mask: ignored.
            account: "Ignored".to_owned(),
            stage: "committed".to_owned(),
            ..Default::default()
        };
        let request = pb::UpdateOpportunityRequest {
            opportunity: Some(changes),
            update_mask: mask(&["title", "owner", "amount", "attributes"]),
        };
        let updated = client.update_opportunity(request).await.expect("update").into_inner();
        assert_eq!(updated.title, "After");
        assert_eq!(updated.owner, "rep-2");
        assert_eq!(updated.amount, Some(pb::Money { currency_code: "EUR".to_owned(), amount_minor: 99 }));
        assert_eq!(updated.attributes.get("industry").map(String::as_str), Some("retail"));
        assert_eq!(updated.account, created.account, "account was not in the mask");
        assert_eq!(updated.stage, "prospect", "stage changes only through Move");
        assert_eq!(updated.source, created.source);
        assert_ne!(updated.etag, created.etag);
        let fetched = client
            .get_opportunity(pb::GetOpportunityRequest { id: created.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, updated);

        let clear = pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity { id: created.id.clone(), ..Default::default() }),
            update_mask: mask(&["amount", "attributes", "external_id"]),
        };
        let cleared = client.update_opportunity(clear).await.expect("clear").into_inner();
        assert_eq!((cleared.amount, cleared.attributes.len(), cleared.external_id.as_str()), (None, 0, ""));
        assert_eq!(history(&mut client, &created.id).await.len(), 1, "descriptive changes are not stage history");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_update_with_a_bad_mask_or_value_is_an_invalid_argument() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create(&mut client, "Masked", "rep-1").await;
        let request = |paths: &[&str], opportunity: pb::Opportunity| pb::UpdateOpportunityRequest {
            opportunity: Some(opportunity),
            update_mask: mask(paths),
        };
        let with_id = || pb::Opportunity { id: created.id.clone(), ..Default::default() };
        expect_invalid(
            client.update_opportunity(request(&["stage"], with_id())).await,
            "update_mask",
            "\"stage\" cannot be updated; allowed: title, account, owner, amount, source, external_id, attributes",
        );
        expect_invalid(client.update_opportunity(request(&[], with_id())).await, "update_mask", "is required");
        let no_opportunity = pb::UpdateOpportunityRequest { opportunity: None, update_mask: mask(&["title"]) };
        expect_invalid(client.update_opportunity(no_opportunity).await, "opportunity", "opportunity: is required");
        expect_invalid(
            client.update_opportunity(request(&["title"], with_id())).await,
            "opportunity.title",
            "opportunity.title: is required",
        );
        let negative = pb::Opportunity {
            amount: Some(pb::Money { currency_code: "USD".to_owned(), amount_minor: -5 }),
            ..with_id()
        };
        expect_invalid(
            client.update_opportunity(request(&["amount"], negative)).await,
            "opportunity.amount.amount_minor",
            "must not be negative",
        );
        let too_many = pb::Opportunity {
            attributes: (0..65).map(|index| (format!("k{index}"), String::new())).collect(),
            ..with_id()
        };
        expect_invalid(client.update_opportunity(request(&["attributes"], too_many)).await, "attributes", "at most 64");
        let unchanged = client
            .get_opportunity(pb::GetOpportunityRequest { id: created.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(unchanged.etag, created.etag, "refused updates change nothing");
        server.shutdown().await;
    }
}
