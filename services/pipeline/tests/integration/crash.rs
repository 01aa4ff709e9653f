//! Crash safety: writers go through the API while the real `funnel-pipeline`
//! process is killed with SIGKILL and restarted. Every acknowledged write is
//! there afterwards, and every opportunity's state is the replay of its
//! history.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use funnel_domain::{OpportunityId, replay};
use funnel_proto::v1 as pb;
use funnel_store::{Store, StoreOptions};
use funnel_testkit::{PIPELINE_SERVICE, TestDatabase};
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, watch};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{Client, by, new_opportunity};

const WRITERS: usize = 4;
const KILLS: usize = 3;
/// How long the writers write between two kills.
const WRITE_FOR: Duration = Duration::from_millis(1500);
/// Upper bound on a start (migrations included) and on any one call.
const DEADLINE: Duration = Duration::from_secs(30);
const STAGES: [&str; 4] = ["prospect", "qualified", "committed", "transacted"];

/// What the service acknowledged for one opportunity, in order: the
/// version (etag) it reached, and its stage and status then.
type Acknowledged = HashMap<String, Vec<(i64, String, i32)>>;

/// The real binary on a fresh port, with its metrics endpoint off so that
/// several can run at once.
fn spawn_server(database_url: &str) -> (Child, SocketAddr) {
    let port_finder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = port_finder.local_addr().expect("a bound listener has an address");
    drop(port_finder);
    let child = Command::new(env!("CARGO_BIN_EXE_funnel-pipeline"))
        .env("FUNNEL_LISTEN", addr.to_string())
        .env("FUNNEL_DATABASE_URL", database_url)
        .env("FUNNEL_METRICS_LISTEN", "off")
        .env_remove("FUNNEL_OTLP_ENDPOINT")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start funnel-pipeline");
    (child, addr)
}

/// Polls health until SERVING, within [`DEADLINE`].
async fn wait_until_serving(addr: SocketAddr) -> Channel {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < DEADLINE, "funnel-pipeline on {addr} was not SERVING within {DEADLINE:?}");
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("valid URI");
        if let Ok(channel) = endpoint.connect().await {
            let request = HealthCheckRequest { service: PIPELINE_SERVICE.to_owned() };
            let health = HealthClient::new(channel.clone()).check(request).await;
            if health.is_ok_and(|response| response.into_inner().status == ServingStatus::Serving as i32) {
                return channel;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One writer: creates opportunities and changes their stages until told to
/// stop, recording what was acknowledged. Errors (the server is down) are
/// expected; the writer retries on the next server.
async fn write(
    writer: usize,
    mut channels: watch::Receiver<Option<Channel>>,
    acknowledged: Arc<Mutex<Acknowledged>>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let mut random = rand_chacha::ChaCha8Rng::seed_from_u64(writer as u64);
    let mut mine: Vec<String> = Vec::new();
    let mut writes = 0;
    while !*stop.borrow() {
        let Some(channel) = channels.borrow_and_update().clone() else {
            tokio::select! {
                _ = channels.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let mut client = Client::new(channel);
        let call = one_write(&mut client, &mut random, &mut mine, writer);
        let Ok(Ok(Some((id, reached)))) = tokio::time::timeout(Duration::from_secs(5), call).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        writes += 1;
        acknowledged.lock().await.entry(id).or_default().push(reached);
    }
    writes
}

async fn one_write(
    client: &mut Client,
    random: &mut impl Rng,
    mine: &mut Vec<String>,
    writer: usize,
) -> Result<Option<(String, (i64, String, i32))>, tonic::Status> {
    let reached = |opportunity: pb::Opportunity| {
        let version = opportunity.etag.parse::<i64>().expect("an etag is a version");
        Some((opportunity.id, (version, opportunity.stage, opportunity.status)))
    };
    if mine.is_empty() || random.random_bool(0.3) {
        let request = new_opportunity(&format!("writer {writer}"), "ana");
        let created = client.create_opportunity(by("loader", request)).await?.into_inner();
        mine.push(created.id.clone());
        return Ok(reached(created));
    }
    let id = mine[random.random_range(0..mine.len())].clone();
    let changed = match random.random_range(0..10) {
        0 => {
            let request = pb::LeakOpportunityRequest { id, reason: "budget".to_owned(), ..Default::default() };
            client.leak_opportunity(by("loader", request)).await
        }
        1 => client.reopen_opportunity(by("loader", pb::ReopenOpportunityRequest { id, ..Default::default() })).await,
        _ => {
            let stage = STAGES[random.random_range(0..STAGES.len())].to_owned();
            let request = pb::MoveOpportunityRequest { id, stage, ..Default::default() };
            client.move_opportunity(by("loader", request)).await
        }
    };
    match changed {
        Ok(response) => Ok(reached(response.into_inner())),
        // Refused by the rules (moving a closed one, ...): nothing written.
        Err(status) if status.code() == tonic::Code::FailedPrecondition => Ok(None),
        Err(status) => Err(status),
    }
}

/// Writes, kills and restarts; then checks every acknowledged write against
/// what the database holds. Returns how many writes were verified.
async fn kill_while_writing(database: &TestDatabase) -> usize {
    let (channel_sender, channels) = watch::channel(None);
    let (stop_sender, stop) = watch::channel(false);
    let acknowledged = Arc::new(Mutex::new(Acknowledged::new()));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        writers.push(tokio::spawn(write(writer, channels.clone(), acknowledged.clone(), stop.clone())));
    }
    for _ in 0..KILLS {
        let (mut child, addr) = spawn_server(database.url());
        channel_sender.send_replace(Some(wait_until_serving(addr).await));
        tokio::time::sleep(WRITE_FOR).await;
        // std's Child::kill is SIGKILL on Unix: no drain, no clean shutdown.
        child.kill().expect("SIGKILL funnel-pipeline");
        child.wait().expect("reap funnel-pipeline");
        channel_sender.send_replace(None);
    }
    stop_sender.send_replace(true);
    let mut writes = 0;
    for writer in writers {
        writes += tokio::time::timeout(DEADLINE, writer).await.expect("writers stop").expect("no panic");
    }
    // Restart once more: the database opens (and migrates) after the last kill.
    let (mut child, addr) = spawn_server(database.url());
    wait_until_serving(addr).await;
    child.kill().expect("stop funnel-pipeline");
    child.wait().expect("reap funnel-pipeline");

    let store = Store::connect(database.url(), &StoreOptions::default()).await.expect("connect to check");
    let acknowledged = acknowledged.lock().await;
    let mut verified = 0;
    for (id, reached) in acknowledged.iter() {
        let opportunity_id = OpportunityId::parse("id", id).expect("an id the service returned");
        let stored = store.get_opportunity(opportunity_id).await.expect("every acknowledged create is there");
        let history: Vec<_> = store
            .list_history(opportunity_id, 1000, "")
            .await
            .expect("history")
            .items
            .into_iter()
            .map(|row| row.transition)
            .collect();
        assert_eq!(replay(&history).expect("the history replays"), stored.state, "{database}: {id}");
        for (version, stage, status) in reached {
            let row = history.iter().find(|row| row.sequence == *version);
            let row = row.unwrap_or_else(|| panic!("{database}: {id}: acknowledged version {version} is missing"));
            assert_eq!(row.to_stage.as_str(), stage, "{database}: {id} at {version}");
            assert_eq!(pb_status(row.to_status), *status, "{database}: {id} at {version}");
            verified += 1;
        }
    }
    assert_eq!(verified, writes, "{database}: every acknowledged write was checked");
    println!(
        "{database}: {KILLS} SIGKILLs during {WRITERS} writers' load; {verified} acknowledged writes on {} \
         opportunities verified, each state equal to the replay of its history",
        acknowledged.len()
    );
    verified
}

fn pb_status(status: funnel_domain::Status) -> i32 {
    match status {
        funnel_domain::Status::Open => pb::OpportunityStatus::Open as i32,
        funnel_domain::Status::Won => pb::OpportunityStatus::Won as i32,
        funnel_domain::Status::Leaked => pb::OpportunityStatus::Leaked as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_on_sqlite() {
    let verified = kill_while_writing(&TestDatabase::sqlite()).await;
    assert!(verified > 0, "the load test wrote something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let verified = kill_while_writing(&database).await;
    assert!(verified > 0, "the load test wrote something");
}
