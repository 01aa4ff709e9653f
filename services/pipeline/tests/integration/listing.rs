//! ListOpportunities: keyset pagination and filters.

use std::collections::HashSet;

use funnel_proto::v1::{self as pb, OpportunityStatus};

use crate::support::{Client, Running, create, expect_invalid, move_to, servers};

async fn list_all(client: &mut Client, filter: pb::ListOpportunitiesRequest) -> Vec<pb::Opportunity> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListOpportunitiesRequest { page_token, ..filter.clone() };
        let page = client.list_opportunities(request).await.expect("list opportunities").into_inner();
        all.extend(page.opportunities);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

fn titles(opportunities: &[pb::Opportunity]) -> Vec<&str> {
    opportunities.iter().map(|opportunity| opportunity.title.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_visits_every_row_exactly_once_while_rows_are_inserted() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let mut seeded = Vec::new();
        for index in 0..30 {
            seeded.push(create(&mut client, &format!("seed {index}"), "seed-owner").await.id);
        }
        let mut inserter_client = server.client();
        let inserter = tokio::spawn(async move {
            for index in 0..30 {
                create(&mut inserter_client, &format!("concurrent {index}"), "other-owner").await;
                tokio::task::yield_now().await;
            }
        });

        let mut visited = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            let request = pb::ListOpportunitiesRequest {
                pipeline: "sales".to_owned(),
                page_size: 4,
                page_token,
                ..Default::default()
            };
            let page = client.list_opportunities(request).await.expect("list").into_inner();
            assert!(page.opportunities.len() <= 4, "a page holds at most page_size rows");
            visited.extend(page.opportunities.into_iter().map(|opportunity| opportunity.id));
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        inserter.await.expect("the inserter finishes");

        let unique: HashSet<&String> = visited.iter().collect();
        assert_eq!(unique.len(), visited.len(), "no row is visited twice");
        for id in &seeded {
            assert_eq!(
                visited.iter().filter(|visited_id| *visited_id == id).count(),
                1,
                "seeded row {id} visited once"
            );
        }
        assert!(pages >= 8, "30 seeded rows in pages of 4 take at least 8 pages, took {pages}");
        let everything = list_all(&mut client, pb::ListOpportunitiesRequest::default()).await;
        assert_eq!(everything.len(), 60, "afterwards every row is listed");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn opportunities_can_be_filtered_by_pipeline_stage_status_and_owner() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        create(&mut client, "ann open", "ann").await;
        let ben_qualified = create(&mut client, "ben qualified", "ben").await;
        move_to(&mut client, &ben_qualified.id, "qualified").await;
        let ann_leaked = create(&mut client, "ann leaked", "ann").await;
        let leak = pb::LeakOpportunityRequest {
            id: ann_leaked.id.clone(),
            reason: "lost to competitor".to_owned(),
            ..Default::default()
        };
        client.leak_opportunity(leak).await.expect("leak");
        let ben_won = create(&mut client, "ben won", "ben").await;
        move_to(&mut client, &ben_won.id, "transacted").await;
        let pipeline = pb::CreatePipelineRequest {
            name: "partners".to_owned(),
            stages: vec![
                pb::Stage { key: "prospect".to_owned(), ..Default::default() },
                pb::Stage { key: "signed".to_owned(), ..Default::default() },
            ],
            ..Default::default()
        };
        client.create_pipeline(pipeline).await.expect("create pipeline");
        let partner = pb::CreateOpportunityRequest {
            pipeline: "partners".to_owned(),
            ..crate::support::new_opportunity("ann partner", "ann")
        };
        client.create_opportunity(partner).await.expect("create partner opportunity");

        let filter =
            |pipeline: &str, stage: &str, status: OpportunityStatus, owner: &str| pb::ListOpportunitiesRequest {
                pipeline: pipeline.to_owned(),
                stage: stage.to_owned(),
                status: status as i32,
                owner: owner.to_owned(),
                page_size: 2,
                page_token: String::new(),
            };
        use OpportunityStatus::{Leaked, Open, Unspecified, Won};
        let cases = [
            (
                filter("", "", Unspecified, ""),
                vec!["ann open", "ben qualified", "ann leaked", "ben won", "ann partner"],
            ),
            (filter("sales", "", Unspecified, ""), vec!["ann open", "ben qualified", "ann leaked", "ben won"]),
            (filter("partners", "", Unspecified, ""), vec!["ann partner"]),
            (filter("sales", "qualified", Unspecified, ""), vec!["ben qualified"]),
            (filter("sales", "prospect", Unspecified, ""), vec!["ann open", "ann leaked"]),
            (filter("", "", Leaked, ""), vec!["ann leaked"]),
            (filter("", "", Won, ""), vec!["ben won"]),
            (filter("", "", Unspecified, "ann"), vec!["ann open", "ann leaked", "ann partner"]),
            (filter("sales", "", Open, "ann"), vec!["ann open"]),
            (filter("sales", "prospect", Open, "ben"), vec![]),
            (filter("nobody-has-this", "", Unspecified, ""), vec![]),
        ];
        for (request, expected) in cases {
            let found = list_all(&mut client, request.clone()).await;
            assert_eq!(titles(&found), expected, "filter {request:?}");
        }

        expect_invalid(
            client.list_opportunities(filter("", "qualified", Unspecified, "")).await,
            "stage",
            "needs pipeline",
        );
        let unknown_status = pb::ListOpportunitiesRequest { status: 42, ..Default::default() };
        expect_invalid(client.list_opportunities(unknown_status).await, "status", "42 is not an OpportunityStatus");
        let first_page = client.list_opportunities(filter("sales", "", Unspecified, "")).await.expect("list");
        let other_filters = pb::ListOpportunitiesRequest {
            page_token: first_page.into_inner().next_page_token,
            ..filter("sales", "", Unspecified, "ann")
        };
        expect_invalid(
            client.list_opportunities(other_filters).await,
            "page_token",
            "was issued for different filters",
        );
        server.shutdown().await;
    }
}
