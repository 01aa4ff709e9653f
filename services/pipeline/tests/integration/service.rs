//! What every gRPC client relies on: health checking and server reflection.

use funnel_testkit::PIPELINE_SERVICE;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::{v1, v1alpha};

use crate::support::{Running, servers};

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_pipeline_service() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut health = HealthClient::new(server.channel());
        for service in ["", PIPELINE_SERVICE] {
            let response = health
                .check(HealthCheckRequest { service: service.to_owned() })
                .await
                .expect("health check")
                .into_inner();
            assert_eq!(response.status, ServingStatus::Serving as i32, "service {service:?}");
        }
        let unknown = health.check(HealthCheckRequest { service: "funnel.v1.Nope".to_owned() }).await;
        assert_eq!(unknown.expect_err("unknown service").code(), tonic::Code::NotFound);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn reflection_v1_lists_the_pipeline_service() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel());
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut responses =
            client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection").into_inner();
        let response = responses.next().await.expect("one response").expect("a successful response");
        let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            response.message_response
        else {
            panic!("expected a service list, got {:?}", response.message_response);
        };
        let names: Vec<&str> = list.service.iter().map(|service| service.name.as_str()).collect();
        assert!(names.contains(&PIPELINE_SERVICE), "services: {names:?}");
        assert!(names.contains(&"grpc.health.v1.Health"), "services: {names:?}");
        drop(responses);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_pipeline_service_and_describes_it() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel());
        let list = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let describe = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                PIPELINE_SERVICE.to_owned(),
            )),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(vec![list, describe]))
            .await
            .expect("reflection")
            .into_inner();
        let listed = responses.next().await.expect("a list response").expect("a successful response");
        let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            listed.message_response
        else {
            panic!("expected a service list, got {:?}", listed.message_response);
        };
        let names: Vec<&str> = list.service.iter().map(|service| service.name.as_str()).collect();
        assert!(names.contains(&PIPELINE_SERVICE), "services: {names:?}");
        let described = responses.next().await.expect("a file response").expect("a successful response");
        let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
            described.message_response
        else {
            panic!("expected file descriptors, got {:?}", described.message_response);
        };
        assert!(!files.file_descriptor_proto.is_empty(), "the service's proto file is served");
        drop(responses);
        server.shutdown().await;
    }
}
