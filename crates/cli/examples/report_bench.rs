//! Benchmark (not a test) of GetFunnelReport on a large history: loads
//! simulated opportunities into PostgreSQL with `Store::import_batch`
//! (skipped when the pipeline already holds them), serves the database on
//! an ephemeral port and times the report over gRPC.
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres funnel_bench
//! cargo run --release -p funnel-cli --example report_bench -- \
//!     postgres://postgres@127.0.0.1:5432/funnel_bench 1000000
//! ```

use std::time::Instant;

use anyhow::{Context, bail};
use funnel_dataset::{OpportunityRecord, RecordStatus, SimulationConfig, simulate};
use funnel_domain::Status;
use funnel_proto::v1 as pb;
use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use funnel_store::{ImportHistory, ImportRecord, OpportunityFilter, Store, StoreOptions};
use sea_orm::ConnectionTrait;

/// Records per import transaction (the service's own batch limit).
const BATCH: usize = 1_000;
/// Report runs timed after one warm-up.
const RUNS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else { bail!("usage: report_bench POSTGRES_URL [OPPORTUNITIES]") };
    let opportunities: u64 = args.next().map_or(Ok(1_000_000), |value| value.parse()).context("OPPORTUNITIES")?;
    let store = Store::connect(&url, &StoreOptions::default()).await?;
    store.migrate().await?;

    let present = store.list_opportunities(&OpportunityFilter::default(), 1, "").await?.items.len();
    if present == 0 {
        load(&store, opportunities).await?;
    } else {
        println!("opportunities already loaded; timing only");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(funnel_pipeline::serve(listener, store.clone(), std::future::pending()));
    let mut client = PipelineServiceClient::connect(format!("http://{addr}")).await?;
    let request = pb::GetFunnelReportRequest { pipeline: "sales".to_owned(), ..Default::default() };
    for run in 0..=RUNS {
        let started = Instant::now();
        let report = client.get_funnel_report(request.clone()).await?.into_inner();
        let elapsed = started.elapsed();
        let label = if run == 0 { "warm-up".to_owned() } else { format!("run {run}") };
        println!(
            "{label}: GetFunnelReport over {} opportunities in {:.2} s (reached per stage: {:?})",
            report.opportunities,
            elapsed.as_secs_f64(),
            report.stages.iter().map(|stage| stage.reached).collect::<Vec<_>>()
        );
    }
    server.abort();
    Ok(())
}

async fn load(store: &Store, opportunities: u64) -> anyhow::Result<()> {
    let config = SimulationConfig { opportunities, ..SimulationConfig::default() };
    let simulation = simulate(&config)?;
    let started = Instant::now();
    let (mut imported, mut transitions) = (0u64, 0usize);
    let mut batch = Vec::with_capacity(BATCH);
    for (index, record) in simulation.enumerate() {
        transitions += record.history.len();
        batch.push(import_record(index as i64, record));
        if batch.len() == BATCH {
            imported += store.import_batch(std::mem::take(&mut batch)).await?.imported;
            if imported % 100_000 == 0 {
                println!("{imported} imported ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
    }
    imported += store.import_batch(batch).await?.imported;
    // Fresh statistics, as autovacuum would gather them after a bulk load.
    store.connection().execute_unprepared("ANALYZE").await?;
    println!(
        "loaded {imported} opportunities with {transitions} history rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Activities are left out: the report does not read them.
fn import_record(index: i64, record: OpportunityRecord) -> ImportRecord {
    let history = record
        .history
        .into_iter()
        .map(|entry| ImportHistory {
            stage: entry.stage,
            status: Some(match entry.status {
                RecordStatus::Open => Status::Open,
                RecordStatus::Won => Status::Won,
                RecordStatus::Leaked => Status::Leaked,
            }),
            occurred_at: Some(entry.occurred_at),
            actor: entry.actor,
            reason: entry.reason,
            note: entry.note,
        })
        .collect();
    ImportRecord {
        index,
        pipeline: record.pipeline,
        external_id: record.external_id,
        title: record.title,
        account: record.account,
        owner: record.owner,
        amount: Some((record.currency, record.amount_minor)),
        source: record.source,
        attributes: record.attributes,
        history,
        activities: Vec::new(),
    }
}
