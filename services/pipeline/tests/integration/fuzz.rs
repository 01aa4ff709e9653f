//! Bad input, found by a machine: a bounded proptest run feeds arbitrary
//! bytes and mutated valid messages to every RPC of both services (read from
//! the contract's descriptor set, so a new RPC is fuzzed without a change
//! here). No call may panic the server, answer INTERNAL (or UNKNOWN, what a
//! panic looks like to a client) or hang. `FUNNEL_FUZZ_CASES` sets the cases
//! per RPC (default 200).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use funnel_proto::v1 as pb;
use funnel_testkit::{PIPELINE_SERVICE, TestDatabase, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::Message;
use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{by, new_opportunity};

const DEFAULT_CASES: u32 = 200;
/// A call that takes longer is a hang.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// One RPC of the contract.
#[derive(Debug, Clone)]
struct Method {
    path: String,
    name: String,
    client_streaming: bool,
    server_streaming: bool,
}

fn methods() -> Vec<Method> {
    let descriptor_set =
        prost_types::FileDescriptorSet::decode(funnel_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
    let mut methods = Vec::new();
    for file in descriptor_set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                let name = method.name.unwrap_or_default();
                methods.push(Method {
                    path: format!("/{package}.{service_name}/{name}"),
                    name,
                    client_streaming: method.client_streaming.unwrap_or(false),
                    server_streaming: method.server_streaming.unwrap_or(false),
                });
            }
        }
    }
    methods
}

/// Valid requests to mutate, by method name; an empty message for the rest.
fn seeds(method: &str, id: &str) -> Vec<Vec<u8>> {
    let id = id.to_owned();
    let mut seeds = vec![Vec::new()];
    let encoded = match method {
        "CreateOpportunity" => new_opportunity("Fuzzed", "ana").encode_to_vec(),
        "CreatePipeline" => pb::CreatePipelineRequest {
            name: "fuzzed".to_owned(),
            display_name: "Fuzzed".to_owned(),
            stages: vec![
                pb::Stage { key: "open".to_owned(), display_name: "Open".to_owned(), rot_after_days: Some(3) },
                pb::Stage { key: "done".to_owned(), display_name: "Done".to_owned(), rot_after_days: None },
            ],
            request_id: "fuzz".to_owned(),
        }
        .encode_to_vec(),
        "GetPipeline" | "UpdatePipeline" => pb::GetPipelineRequest { name: "sales".to_owned() }.encode_to_vec(),
        "GetOpportunity" => pb::GetOpportunityRequest { id }.encode_to_vec(),
        "ListOpportunities" => pb::ListOpportunitiesRequest {
            pipeline: "sales".to_owned(),
            stage: "prospect".to_owned(),
            page_size: 5,
            ..Default::default()
        }
        .encode_to_vec(),
        "UpdateOpportunity" => pb::UpdateOpportunityRequest {
            opportunity: Some(pb::Opportunity { id, title: "Renamed".to_owned(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["title".to_owned()] }),
        }
        .encode_to_vec(),
        "MoveOpportunity" => {
            pb::MoveOpportunityRequest { id, stage: "qualified".to_owned(), ..Default::default() }.encode_to_vec()
        }
        "LeakOpportunity" => {
            pb::LeakOpportunityRequest { id, reason: "budget".to_owned(), ..Default::default() }.encode_to_vec()
        }
        "ReopenOpportunity" => pb::ReopenOpportunityRequest { id, ..Default::default() }.encode_to_vec(),
        "LogActivity" => pb::LogActivityRequest { opportunity_id: id, kind: 1, ..Default::default() }.encode_to_vec(),
        "ListActivities" | "ListStageHistory" => {
            pb::ListActivitiesRequest { opportunity_id: id, page_size: 3, ..Default::default() }.encode_to_vec()
        }
        "ImportOpportunities" => pb::ImportOpportunitiesRequest {
            opportunities: vec![pb::ImportedOpportunity {
                pipeline: "sales".to_owned(),
                external_id: "fuzz-1".to_owned(),
                title: "Imported".to_owned(),
                owner: "ana".to_owned(),
                ..Default::default()
            }],
        }
        .encode_to_vec(),
        "GetLeadScore" => pb::GetLeadScoreRequest { opportunity_id: id, as_of: None }.encode_to_vec(),
        "ListLeadScores" => {
            pb::ListLeadScoresRequest { pipeline: "sales".to_owned(), page_size: 5, ..Default::default() }
                .encode_to_vec()
        }
        "TriggerRetrain" | "ListModels" => {
            pb::ListModelsRequest { pipeline: "sales".to_owned(), ..Default::default() }.encode_to_vec()
        }
        "GetModel" | "ActivateModel" => pb::GetModelRequest { version: 1 }.encode_to_vec(),
        _ => return seeds,
    };
    seeds.push(encoded);
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len();
        match *mutation {
            Mutation::FlipBit(at, bit) if len > 0 => bytes[at % len] ^= 1 << bit,
            Mutation::SetByte(at, byte) if len > 0 => bytes[at % len] = byte,
            Mutation::Insert(at, byte) => bytes.insert(at % (len + 1), byte),
            Mutation::Remove(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
    bytes
}

/// One message: random bytes, or a seed with a few mutations.
fn message(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seed_count = seeds.len();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..seed_count, proptest::collection::vec(mutation(), 1..6))
            .prop_map(move |(seed, mutations)| mutate(seeds[seed].clone(), &mutations)),
    ]
}

/// Sends and receives messages as they are on the wire.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct RawBytes;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(source.copy_to_bytes(source.remaining()).to_vec()))
    }
}

fn acceptable(method: &Method, status: &Status) -> Result<(), String> {
    match status.code() {
        Code::Internal | Code::Unknown => Err(format!("{}: {:?}: {}", method.path, status.code(), status.message())),
        _ => Ok(()),
    }
}

/// Calls `method` with `messages` (one unless it is client-streaming).
async fn call(channel: Channel, method: &Method, messages: Vec<Vec<u8>>) -> Result<(), String> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| format!("{}: the server is gone: {error}", method.path))?;
    let path = PathAndQuery::from_maybe_shared(method.path.clone()).expect("a method path is a valid path");
    let first = messages.first().cloned().unwrap_or_default();
    let outcome = match (method.client_streaming, method.server_streaming) {
        (true, _) => {
            let stream = tokio_stream::iter(messages);
            grpc.client_streaming(by("fuzzer", stream), path, RawCodec).await.map(|_| ())
        }
        (false, true) => match grpc.server_streaming(by("fuzzer", first), path, RawCodec).await {
            // A watch waits for events: reading its first message may well time out.
            Ok(response) => {
                let mut stream = response.into_inner();
                match tokio::time::timeout(Duration::from_millis(50), stream.message()).await {
                    Ok(Err(status)) => Err(status),
                    _ => Ok(()),
                }
            }
            Err(status) => Err(status),
        },
        (false, false) => grpc.unary(by("fuzzer", first), path, RawCodec).await.map(|_| ()),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(status) => acceptable(method, &status),
    }
}

fn cases() -> u32 {
    std::env::var("FUNNEL_FUZZ_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(DEFAULT_CASES)
}

#[test]
fn every_rpc_survives_arbitrary_and_mutated_messages() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let database = TestDatabase::sqlite();
    let (server, id) = runtime.block_on(async {
        let server = TestServer::start(database.store().await).await;
        let created = server.client().create_opportunity(by("alice", new_opportunity("Seed", "ana"))).await;
        (server, created.expect("create the seed opportunity").into_inner().id)
    });

    let methods = methods();
    assert!(methods.len() >= 20, "both services' methods are found: {methods:?}");
    let cases = cases();
    let mut tried_total = 0;
    for method in &methods {
        let tried = AtomicUsize::new(0);
        let config = Config { cases, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        let messages = proptest::collection::vec(message(seeds(&method.name, &id)), 1..4);
        let result = runner.run(&messages, |messages| {
            tried.fetch_add(1, Ordering::Relaxed);
            let channel = server.channel();
            let outcome =
                runtime.block_on(async { tokio::time::timeout(CALL_DEADLINE, call(channel, method, messages)).await });
            match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(failure)) => Err(TestCaseError::fail(failure)),
                Err(_) => Err(TestCaseError::fail(format!("{}: no answer within {CALL_DEADLINE:?}", method.path))),
            }
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
        let tried = tried.into_inner();
        println!("fuzz: {} took {tried} inputs", method.path);
        tried_total += tried;
    }

    runtime.block_on(async {
        let request = HealthCheckRequest { service: PIPELINE_SERVICE.to_owned() };
        let health = HealthClient::new(server.channel()).check(request).await.expect("the server is still up");
        assert_eq!(health.into_inner().status, ServingStatus::Serving as i32);
        server.shutdown().await;
    });
    println!("fuzz: {tried_total} inputs over {} RPCs ({cases} cases each), no panic, INTERNAL or hang", methods.len());
}

#[test]
fn truncated_and_garbage_requests_are_invalid_arguments_not_internal() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let database = TestDatabase::sqlite();
    runtime.block_on(async {
        let server = TestServer::start(database.store().await).await;
        let mut grpc = tonic::client::Grpc::new(server.channel());
        grpc.ready().await.expect("ready");
        // Field 1, length-delimited, 200 bytes long, but the message ends after 3.
        let truncated = vec![0x0a, 0xc8, 0x01, b'a', b'b', b'c'];
        let path = PathAndQuery::from_static("/funnel.v1.PipelineService/GetOpportunity");
        let status = grpc.unary(Request::new(truncated), path, RawCodec).await.expect_err("cannot decode");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("not a valid message"), "{:?}", status.message());
        server.shutdown().await;
    });
}
