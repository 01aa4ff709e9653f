//! Custom pipelines: create, read, list, update, and the rules that keep
//! open opportunities from losing their stage.

use funnel_proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{Client, Running, expect_invalid, expect_status, servers};

fn stage(key: &str, display_name: &str, rot_after_days: Option<u32>) -> pb::Stage {
    pb::Stage { key: key.to_owned(), display_name: display_name.to_owned(), rot_after_days }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|path| (*path).to_owned()).collect() })
}

fn keys(pipeline: &pb::Pipeline) -> Vec<&str> {
    pipeline.stages.iter().map(|stage| stage.key.as_str()).collect()
}

async fn create_enterprise(client: &mut Client) -> pb::Pipeline {
    let request = pb::CreatePipelineRequest {
        name: "enterprise".to_owned(),
        display_name: "Enterprise deals".to_owned(),
        stages: vec![
            stage("lead", "Lead", Some(14)),
            stage("demo", "Demo", None),
            stage("proposal", "", Some(30)),
            stage("closed_won", "Closed won", None),
        ],
        request_id: String::new(),
    };
    client.create_pipeline(request).await.expect("create pipeline").into_inner()
}

#[tokio::test]
async fn a_custom_pipeline_can_be_created_read_and_listed() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create_enterprise(&mut client).await;
        assert_eq!(created.name, "enterprise");
        assert_eq!(created.display_name, "Enterprise deals");
        assert_eq!(keys(&created), ["lead", "demo", "proposal", "closed_won"]);
        assert_eq!(created.stages[0].rot_after_days, Some(14));
        assert_eq!(created.stages[2].display_name, "proposal", "the display name defaults to the key");

        let fetched = client
            .get_pipeline(pb::GetPipelineRequest { name: "enterprise".to_owned() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, created);

        let first = client
            .list_pipelines(pb::ListPipelinesRequest { page_size: 1, page_token: String::new() })
            .await
            .expect("list")
            .into_inner();
        let names: Vec<&str> = first.pipelines.iter().map(|pipeline| pipeline.name.as_str()).collect();
        assert_eq!(names, ["enterprise"]);
        let second = client
            .list_pipelines(pb::ListPipelinesRequest { page_size: 1, page_token: first.next_page_token })
            .await
            .expect("list")
            .into_inner();
        let names: Vec<&str> = second.pipelines.iter().map(|pipeline| pipeline.name.as_str()).collect();
        assert_eq!(names, ["sales"]);
        assert_eq!(second.next_page_token, "");

        let opportunity = pb::CreateOpportunityRequest {
            pipeline: "enterprise".to_owned(),
            ..crate::support::new_opportunity("Big one", "rep-1")
        };
        let created = client.create_opportunity(opportunity).await.expect("create in custom pipeline").into_inner();
        assert_eq!((created.pipeline.as_str(), created.stage.as_str()), ("enterprise", "lead"));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn creating_a_pipeline_twice_is_already_exists_unless_it_is_a_retry() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        create_enterprise(&mut client).await;
        let again = pb::CreatePipelineRequest {
            name: "enterprise".to_owned(),
            stages: vec![stage("a", "", None), stage("b", "", None)],
            ..Default::default()
        };
        expect_status(client.create_pipeline(again).await, Code::AlreadyExists, "pipeline enterprise already exists");

        let request = pb::CreatePipelineRequest {
            name: "smb".to_owned(),
            stages: vec![stage("a", "", None), stage("b", "", None)],
            request_id: "create-smb-1".to_owned(),
            ..Default::default()
        };
        let first = client.create_pipeline(request.clone()).await.expect("create").into_inner();
        let retry = client.create_pipeline(request).await.expect("retry").into_inner();
        assert_eq!(retry, first, "a retry with the same request_id returns the first result");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_pipeline_can_be_renamed_extended_and_its_rot_thresholds_changed() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let created = create_enterprise(&mut client).await;

        let rename = pb::UpdatePipelineRequest {
            name: "enterprise".to_owned(),
            display_name: "Enterprise".to_owned(),
            update_mask: mask(&["display_name"]),
            etag: created.etag.clone(),
            ..Default::default()
        };
        let renamed = client.update_pipeline(rename).await.expect("rename").into_inner();
        assert_eq!(renamed.display_name, "Enterprise");
        assert_eq!(renamed.stages, created.stages, "stages are not in the mask");
        assert_ne!(renamed.etag, created.etag);

        let extend = pb::UpdatePipelineRequest {
            name: "enterprise".to_owned(),
            stages: vec![
                stage("lead", "Lead", Some(7)),
                stage("demo", "Product demo", None),
                stage("proposal", "proposal", Some(30)),
                stage("negotiation", "Negotiation", Some(10)),
                stage("closed_won", "Closed won", None),
            ],
            update_mask: mask(&["stages"]),
            etag: renamed.etag.clone(),
            ..Default::default()
        };
        let extended = client.update_pipeline(extend).await.expect("extend").into_inner();
        assert_eq!(keys(&extended), ["lead", "demo", "proposal", "negotiation", "closed_won"]);
        assert_eq!(extended.stages[0].rot_after_days, Some(7));
        assert_eq!(extended.stages[1].display_name, "Product demo");
        assert_eq!(extended.display_name, "Enterprise", "display_name is not in the mask");

        let fetched = client
            .get_pipeline(pb::GetPipelineRequest { name: "enterprise".to_owned() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(fetched, extended);

        let stale = pb::UpdatePipelineRequest {
            name: "enterprise".to_owned(),
            display_name: "Stale".to_owned(),
            update_mask: mask(&["display_name"]),
            etag: created.etag.clone(),
            ..Default::default()
        };
        expect_status(
            client.update_pipeline(stale).await,
            Code::Aborted,
            "pipeline enterprise changed since it was read",
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn removing_or_reordering_a_stage_that_holds_open_opportunities_is_a_failed_precondition() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        create_enterprise(&mut client).await;
        let opportunity = pb::CreateOpportunityRequest {
            pipeline: "enterprise".to_owned(),
            stage: "demo".to_owned(),
            ..crate::support::new_opportunity("In demo", "rep-1")
        };
        client.create_opportunity(opportunity).await.expect("create in demo");

        let update = |stages: Vec<pb::Stage>| pb::UpdatePipelineRequest {
            name: "enterprise".to_owned(),
            stages,
            update_mask: mask(&["stages"]),
            ..Default::default()
        };
        let without_demo = vec![stage("lead", "", None), stage("proposal", "", None), stage("closed_won", "", None)];
        expect_status(
            client.update_pipeline(update(without_demo)).await,
            Code::FailedPrecondition,
            "stage demo holds 1 open opportunities",
        );
        let demo_first = vec![
            stage("demo", "", None),
            stage("lead", "", None),
            stage("proposal", "", None),
            stage("closed_won", "", None),
        ];
        expect_status(
            client.update_pipeline(update(demo_first)).await,
            Code::FailedPrecondition,
            "stage demo holds 1 open opportunities",
        );
        let unchanged = client
            .get_pipeline(pb::GetPipelineRequest { name: "enterprise".to_owned() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(keys(&unchanged), ["lead", "demo", "proposal", "closed_won"], "a refused update changes nothing");

        // An empty stage may go.
        let without_proposal = vec![stage("lead", "", None), stage("demo", "", None), stage("closed_won", "", None)];
        let updated = client.update_pipeline(update(without_proposal)).await.expect("remove empty stage").into_inner();
        assert_eq!(keys(&updated), ["lead", "demo", "closed_won"]);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_pipelines_are_invalid_arguments_naming_the_field() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let request = |name: &str, stages: Vec<pb::Stage>| pb::CreatePipelineRequest {
            name: name.to_owned(),
            stages,
            ..Default::default()
        };
        let two = || vec![stage("a", "", None), stage("b", "", None)];
        expect_invalid(client.create_pipeline(request("", two())).await, "name", "name: is required");
        expect_invalid(client.create_pipeline(request("1st", two())).await, "name", "is not a pipeline name");
        expect_invalid(
            client.create_pipeline(request("one", vec![stage("a", "", None)])).await,
            "stages",
            "a pipeline needs at least two stages",
        );
        expect_invalid(
            client.create_pipeline(request("dup", vec![stage("a", "", None), stage("a", "", None)])).await,
            "stages[1].key",
            "stage key a is used twice",
        );
        expect_invalid(
            client.create_pipeline(request("bad-key", vec![stage("A", "", None), stage("b", "", None)])).await,
            "stages[0].key",
            "is not a stage key",
        );
        expect_invalid(
            client.create_pipeline(request("rot", vec![stage("a", "", Some(0)), stage("b", "", None)])).await,
            "stages[0].rot_after_days",
            "must be between 1 and 3650 days",
        );
        let too_many = (0..51).map(|index| stage(&format!("s{index}"), "", None)).collect();
        expect_invalid(client.create_pipeline(request("many", too_many)).await, "stages", "at most 50 stages, got 51");
        expect_status(
            client.get_pipeline(pb::GetPipelineRequest { name: "nope".to_owned() }).await,
            Code::NotFound,
            "pipeline nope not found",
        );
        let no_mask = pb::UpdatePipelineRequest { name: "sales".to_owned(), ..Default::default() };
        expect_invalid(client.update_pipeline(no_mask).await, "update_mask", "update_mask: is required");
        let bad_mask =
            pb::UpdatePipelineRequest { name: "sales".to_owned(), update_mask: mask(&["name"]), ..Default::default() };
        expect_invalid(client.update_pipeline(bad_mask).await, "update_mask", "\"name\" cannot be updated");
        server.shutdown().await;
    }
}
