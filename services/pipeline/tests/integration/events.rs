//! WatchEvents: gap-free, ordered, resumable, filtered, and bounded for slow
//! consumers. Assertions are on what is received, never on timing.

use funnel_proto::v1 as pb;
use funnel_testkit::TestServer;
use tonic::{Code, Streaming};

use crate::support::{Client, Running, by, create, expect_invalid, expect_status, move_to, new_opportunity, servers};

async fn watch(client: &mut Client, request: pb::WatchEventsRequest) -> Streaming<pb::Event> {
    client.watch_events(request).await.expect("watch events").into_inner()
}

fn after(sequence: i64) -> pb::WatchEventsRequest {
    pb::WatchEventsRequest {
        start: Some(pb::watch_events_request::Start::AfterSequence(sequence)),
        ..Default::default()
    }
}

async fn next(stream: &mut Streaming<pb::Event>) -> pb::Event {
    stream.message().await.expect("the stream has no error").expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_resumes_from_its_last_sequence_sees_every_event_once_in_order_while_another_writes() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        const OPPORTUNITIES: usize = 40;
        // One creation and one move each.
        const EVENTS: i64 = 2 * OPPORTUNITIES as i64;
        let mut writer = server.client();
        let writing = tokio::spawn(async move {
            for index in 0..OPPORTUNITIES {
                let created = create(&mut writer, &format!("deal {index}"), "rep-1").await;
                move_to(&mut writer, &created.id, "qualified").await;
            }
        });
        let mut client = server.client();
        let mut seen: Vec<pb::Event> = Vec::new();
        let mut reconnects = 0;
        while (seen.len() as i64) < EVENTS {
            // Reconnect every few events: from the beginning, then from the
            // last sequence seen.
            let request = match seen.last() {
                None => pb::WatchEventsRequest {
                    start: Some(pb::watch_events_request::Start::FromBeginning(true)),
                    ..Default::default()
                },
                Some(last) => after(last.sequence),
            };
            let mut stream = watch(&mut client, request).await;
            for _ in 0..7 {
                if seen.len() as i64 == EVENTS {
                    break;
                }
                seen.push(next(&mut stream).await);
            }
            reconnects += 1;
        }
        writing.await.expect("the writer does not panic");
        let sequences: Vec<i64> = seen.iter().map(|event| event.sequence).collect();
        assert_eq!(sequences, (1..=EVENTS).collect::<Vec<_>>(), "every event once, in order, no gap");
        assert!(reconnects > 10, "the watcher reconnected {reconnects} times");
        // Each opportunity's creation comes before its move.
        for event in &seen {
            if event.r#type == pb::EventType::OpportunityAdvanced as i32 {
                let creation = seen
                    .iter()
                    .position(|earlier| {
                        earlier.opportunity_id == event.opportunity_id
                            && earlier.r#type == pb::EventType::OpportunityCreated as i32
                    })
                    .expect("a creation event");
                assert!(seen[creation].sequence < event.sequence);
            }
        }
        // Nothing more was written: a resumed watcher now waits for live events.
        let mut stream = watch(&mut client, after(EVENTS)).await;
        let created = create(&mut client, "live", "rep-2").await;
        let live = next(&mut stream).await;
        assert_eq!((live.sequence, live.opportunity_id.as_str()), (EVENTS + 1, created.id.as_str()));
        assert_eq!(live.r#type, pb::EventType::OpportunityCreated as i32);
        let payload: serde_json::Value = serde_json::from_str(&live.payload_json).expect("a JSON payload");
        assert_eq!(payload["stage"], "prospect");
        drop(stream);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_watcher_resumes_across_a_server_restart_without_gap_or_duplicate() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        for index in 0..5 {
            create(&mut client, &format!("before {index}"), "rep-1").await;
        }
        let mut stream = watch(&mut client, after(0)).await;
        let first = [next(&mut stream).await, next(&mut stream).await];
        assert_eq!(first.map(|event| event.sequence), [1, 2]);
        // The server ends open streams when it shuts down, with a hint to resume.
        server.shutdown().await;
        match stream.message().await {
            Ok(None) => {}
            Err(status) => assert!(
                matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled),
                "unexpected end: {status:?}"
            ),
            Ok(Some(event)) => assert_eq!(event.sequence, 3, "only what came next, if anything"),
        }

        let restarted = TestServer::start(database.store().await).await;
        let mut client = restarted.client();
        create(&mut client, "after restart", "rep-1").await;
        let mut stream = watch(&mut client, after(2)).await;
        let mut sequences = Vec::new();
        for _ in 0..4 {
            sequences.push(next(&mut stream).await.sequence);
        }
        assert_eq!(sequences, [3, 4, 5, 6]);
        drop(stream);
        restarted.shutdown().await;
    }
}

#[tokio::test]
async fn watchers_get_only_the_pipeline_and_types_they_asked_for() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let stage = |key: &str| pb::Stage { key: key.to_owned(), ..Default::default() };
        let other = pb::CreatePipelineRequest {
            name: "other".to_owned(),
            stages: vec![stage("open"), stage("done")],
            ..Default::default()
        };
        client.create_pipeline(other).await.expect("create pipeline");
        let in_other = pb::CreateOpportunityRequest { pipeline: "other".to_owned(), ..new_opportunity("O", "rep-1") };
        let other_id = client.create_opportunity(by("alice", in_other)).await.expect("create").into_inner().id;
        let sales = create(&mut client, "S", "rep-1").await;
        for id in [&other_id, &sales.id] {
            let leak = pb::LeakOpportunityRequest { id: id.clone(), reason: "gone".to_owned(), ..Default::default() };
            client.leak_opportunity(by("alice", leak)).await.expect("leak");
        }

        let request = pb::WatchEventsRequest { pipeline: "other".to_owned(), ..after(0) };
        let mut stream = watch(&mut client, request).await;
        let types =
            [next(&mut stream).await, next(&mut stream).await, next(&mut stream).await].map(|event| event.r#type);
        let expected =
            [pb::EventType::PipelineCreated, pb::EventType::OpportunityCreated, pb::EventType::OpportunityLeaked];
        assert_eq!(types, expected.map(|kind| kind as i32));

        let request = pb::WatchEventsRequest { types: vec![pb::EventType::OpportunityLeaked as i32], ..after(0) };
        let mut stream = watch(&mut client, request).await;
        let leaks = [next(&mut stream).await, next(&mut stream).await];
        assert!(leaks[0].sequence < leaks[1].sequence);
        assert_eq!(leaks.map(|event| event.opportunity_id), [other_id.clone(), sales.id.clone()]);

        let unknown = pb::WatchEventsRequest { pipeline: "nope".to_owned(), ..Default::default() };
        expect_status(client.watch_events(unknown).await, Code::NotFound, "pipeline nope not found");
        let unspecified = pb::WatchEventsRequest { types: vec![0], ..Default::default() };
        expect_invalid(client.watch_events(unspecified).await, "types[0]", "not a filter");
        expect_invalid(client.watch_events(after(-1)).await, "after_sequence", "negative");
        expect_status(client.watch_events(after(1_000)).await, Code::OutOfRange, "beyond the latest event");
        drop(stream);
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_gets_all_of_two_thousand_events_in_order() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        const EVENTS: usize = 2_000;
        let mut client = server.client();
        // From now: the stream is registered before anything is written.
        let mut stream = watch(&mut client, pb::WatchEventsRequest::default()).await;
        let mut writer = server.client();
        let writing = tokio::spawn(async move {
            let batches: Vec<pb::ImportOpportunitiesRequest> = (0..EVENTS / 500)
                .map(|batch| pb::ImportOpportunitiesRequest {
                    opportunities: (0..500).map(|index| imported(&format!("crm-{batch}-{index}"))).collect(),
                })
                .collect();
            writer.import_opportunities(tokio_stream::iter(batches)).await.expect("import").into_inner()
        });
        let mut sequences = Vec::with_capacity(EVENTS);
        while sequences.len() < EVENTS {
            sequences.push(next(&mut stream).await.sequence);
            // Slower than the writer: the server must wait for us, not buffer.
            if sequences.len() % 50 == 0 {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
        let summary = writing.await.expect("the writer does not panic");
        assert_eq!(summary.imported, EVENTS as i64);
        assert_eq!(sequences, (1..=EVENTS as i64).collect::<Vec<_>>());
        drop(stream);
        server.shutdown().await;
    }
}

fn imported(external_id: &str) -> pb::ImportedOpportunity {
    pb::ImportedOpportunity {
        pipeline: "sales".to_owned(),
        external_id: external_id.to_owned(),
        title: external_id.to_owned(),
        owner: "rep-1".to_owned(),
        history: vec![pb::ImportedHistoryEntry {
            stage: "prospect".to_owned(),
            status: pb::OpportunityStatus::Open as i32,
            occurred_at: Some(crate::support::timestamp(crate::support::ago(chrono::Duration::days(3)))),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A writer that stopped between its commit and numbering its events (on
/// PostgreSQL) leaves them pending; an idle watcher's poll numbers and
/// delivers them without any other write.
#[tokio::test]
async fn on_postgres_a_watcher_delivers_events_a_stopped_writer_left_pending() {
    let Some(database) = funnel_testkit::TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let mut client = server.client();
    create(&mut client, "before", "rep-1").await;
    let last = store.last_event_sequence().await.expect("last sequence");
    let mut stream = watch(&mut client, after(last)).await;

    let orphan = "INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
                  VALUES ('pipeline_updated', 'sales', NULL, '{\"note\": \"left behind\"}', 1, 1)";
    sea_orm::ConnectionTrait::execute_unprepared(store.connection(), orphan).await.expect("leave a pending event");
    // Nothing else writes: only the watcher's poll can number it.
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), next(&mut stream))
        .await
        .expect("the pending event is delivered, not left pending");
    assert_eq!(delivered.sequence, last + 1, "{delivered:?}");
    assert!(delivered.payload_json.contains("left behind"), "{delivered:?}");
    server.shutdown().await;
}
