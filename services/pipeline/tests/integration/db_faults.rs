//! The database goes away and comes back: requests fail fast with
//! UNAVAILABLE, health turns NOT_SERVING, and both recover by themselves.
//! The outage is a TCP proxy in front of PostgreSQL that the test cuts: the
//! server itself is shared with other tests and is never stopped.

use std::time::{Duration, Instant};

use funnel_proto::v1 as pb;
use funnel_store::{Store, StoreOptions};
use funnel_testkit::{PIPELINE_SERVICE, TcpProxy, TestDatabase, TestServer};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{by, create, new_opportunity};

/// Longest any wait in this test may take; the health watcher pings every
/// 2 s and a ping gives up after the 2 s acquire timeout.
const DEADLINE: Duration = Duration::from_secs(20);

async fn health(channel: Channel) -> Option<i32> {
    let request = HealthCheckRequest { service: PIPELINE_SERVICE.to_owned() };
    let response = HealthClient::new(channel).check(request).await.ok()?;
    Some(response.into_inner().status)
}

/// Polls health every 50 ms until it reports `wanted`; how long that took.
async fn wait_for_health(channel: &Channel, wanted: ServingStatus, since: Instant) -> Duration {
    loop {
        if health(channel.clone()).await == Some(wanted as i32) {
            return since.elapsed();
        }
        assert!(since.elapsed() < DEADLINE, "health did not turn {wanted:?} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_database_outage_fails_requests_fast_and_both_recover_by_themselves() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set, and the outage is simulated in front of PostgreSQL");
        return;
    };
    let (proxy, proxied_url) = TcpProxy::in_front_of(database.url()).await;
    let store = Store::connect(&proxied_url, &StoreOptions::default()).await.expect("connect through the proxy");
    let server = TestServer::start(store).await;
    let mut client = server.client();
    let before = create(&mut client, "Before the outage", "ana").await;

    proxy.cut();
    let cut_at = Instant::now();
    let started = Instant::now();
    let result = client.create_opportunity(by("alice", new_opportunity("During", "ana"))).await;
    let failed_after = started.elapsed();
    let status = result.expect_err("the database is unreachable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("database is unavailable"), "{:?}", status.message());
    assert!(failed_after < Duration::from_secs(4), "failed after {failed_after:?}, not fast");
    let started = Instant::now();
    let status = client.get_opportunity(pb::GetOpportunityRequest { id: before.id.clone() }).await.expect_err("down");
    assert_eq!(status.code(), Code::Unavailable, "reads too: {status:?}");
    let read_failed_after = started.elapsed();
    let not_serving_after = wait_for_health(&server.channel(), ServingStatus::NotServing, cut_at).await;

    proxy.restore();
    let restored_at = Instant::now();
    let first_success_after = loop {
        let attempt = client.create_opportunity(by("alice", new_opportunity("After the outage", "ana"))).await;
        match attempt {
            Ok(_) => break restored_at.elapsed(),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "only UNAVAILABLE while recovering: {status:?}");
                assert!(restored_at.elapsed() < DEADLINE, "requests did not recover within {DEADLINE:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let serving_after = wait_for_health(&server.channel(), ServingStatus::Serving, restored_at).await;
    let kept = client.get_opportunity(pb::GetOpportunityRequest { id: before.id.clone() }).await.expect("read");
    assert_eq!(kept.into_inner().title, "Before the outage");
    println!(
        "database outage: write failed with UNAVAILABLE after {failed_after:?}, read after {read_failed_after:?}; \
         NOT_SERVING {not_serving_after:?} after the cut; after the restore, requests succeeded again in \
         {first_success_after:?} and health was SERVING in {serving_after:?}"
    );
    assert!(first_success_after < Duration::from_secs(5), "recovery took {first_success_after:?}");
    server.shutdown().await;
}
