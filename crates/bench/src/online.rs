//! B1-B4 and B8: calls through gRPC under the load generator against
//! pgbench and the sqlite3 shell.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use funnel_proto::v1 as pb;
use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use tonic::transport::Channel;

use crate::anchors::{self, Pgbench};
use crate::context::{Bench, Loaded, OpenOpportunity};
use crate::framed;
use crate::loadgen::{self, LoadResult, LoadShape, Operation};
use crate::results::{Comparison, Goal, median};

/// The next stage of a toggling opportunity (never the won stage).
fn toggled(stage: &str) -> &'static str {
    if stage == "prospect" { "qualified" } else { "prospect" }
}

/// Moves: worker `w` owns every opportunity whose index is `w` modulo the
/// concurrency, so no two calls race on one row.
fn move_operation(client: PipelineServiceClient<Channel>, open: Vec<OpenOpportunity>, workers: usize) -> Operation {
    let mut owned: Vec<Vec<(String, Mutex<String>)>> = (0..workers).map(|_| Vec::new()).collect();
    for (index, opportunity) in open.into_iter().enumerate() {
        owned[index % workers].push((opportunity.id, Mutex::new(opportunity.stage)));
    }
    let owned = Arc::new(owned);
    Arc::new(move |worker, iteration| {
        let mut client = client.clone();
        let owned = owned.clone();
        Box::pin(async move {
            let list = &owned[worker];
            let Some((id, stage)) = list.get((iteration as usize) % list.len().max(1)) else {
                return Err(tonic::Status::failed_precondition("no opportunity for this worker"));
            };
            let target = toggled(&stage.lock().map(|stage| stage.clone()).unwrap_or_default()).to_owned();
            let mut request =
                tonic::Request::new(pb::MoveOpportunityRequest { id: id.clone(), stage: target, ..Default::default() });
            request.metadata_mut().insert("x-funnel-actor", tonic::metadata::MetadataValue::from_static("bench"));
            let moved = client.move_opportunity(request).await?.into_inner();
            if let Ok(mut stage) = stage.lock() {
                *stage = moved.stage;
            }
            Ok(())
        })
    })
}

/// Unrecorded moves before a benchmark's first pair (see [`loadgen::warm_up`]).
async fn warm_up_moves(loaded: &Loaded, concurrency: usize) -> anyhow::Result<()> {
    let client = loaded.server.client().await?;
    let operation = move_operation(client, loaded.open_opportunities()?, concurrency);
    loadgen::warm_up(concurrency, operation).await
}

async fn run_moves(loaded: &Loaded, concurrency: usize, seconds: u64, rate: Option<f64>) -> anyhow::Result<LoadResult> {
    let client = loaded.server.client().await?;
    let open = loaded.open_opportunities()?;
    let operation = move_operation(client, open, concurrency);
    let shape = LoadShape { concurrency, duration: Duration::from_secs(seconds), rate };
    let result = loadgen::run(shape, operation).await?;
    report_load("MoveOpportunity", &result);
    Ok(result)
}

fn report_load(what: &str, result: &LoadResult) {
    println!(
        "    {what}: {} calls in {:.1} s, {:.0}/s, p50 {} us, p99 {} us, {} errors{}, load generator {:.0}% of a core",
        result.completed,
        result.seconds,
        result.throughput,
        result.p50_micros,
        result.p99_micros,
        result.errors,
        result.first_error.as_deref().map(|error| format!(" (first: {error})")).unwrap_or_default(),
        result.client_cpu_cores * 100.0
    );
}

fn pgbench(bench: &Bench, loaded: &Loaded) -> Pgbench {
    Pgbench {
        url: loaded.url.clone(),
        clients: bench.settings.concurrency,
        seconds: bench.settings.seconds,
        ids: loaded.ids,
        cpus: bench.client_cpus(),
    }
}

pub async fn b1(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B1: MoveOpportunity on PostgreSQL vs pgbench");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let pgbench = pgbench(bench, loaded);
    let mut comparison = Comparison::new(
        "B1",
        &format!("MoveOpportunity via gRPC, PostgreSQL, {} in flight", settings.concurrency),
        &format!("pgbench -M prepared -c {} -j 2, UPDATE ... RETURNING + INSERT", settings.concurrency),
        "tx/s",
        Goal::AtLeast(0.7),
    );
    let mut anchor_tps = Vec::new();
    let mut client_cpu = Vec::new();
    let mut errors = 0;
    warm_up_moves(loaded, settings.concurrency).await?;
    for _ in 0..settings.pairs {
        let anchor = pgbench.tps("pg_move.sql")?;
        let funnel = run_moves(loaded, settings.concurrency, settings.seconds, None).await?;
        errors += funnel.errors;
        client_cpu.push(funnel.client_cpu_cores);
        comparison.push(funnel.throughput, anchor);
        anchor_tps.push(anchor);
    }
    let (rss, hwm) = loaded.server.memory_kib();
    comparison.notes = format!("{errors} errors");
    bench.b1_anchor_tps = anchor_tps;
    bench.results.comparisons.push(comparison);
    bench.note(
        "service RSS after B1 load (PostgreSQL)",
        format!("{:.1} MiB (peak {:.1} MiB)", rss as f64 / 1024.0, hwm as f64 / 1024.0),
    );
    bench.note(
        "load generator CPU during B1",
        format!("{:.0}% of one core (median; B1 runs unpinned)", median(&client_cpu) * 100.0),
    );
    Ok(())
}

pub async fn b2(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B2: MoveOpportunity on SQLite vs the sqlite3 shell");
    bench.sqlite().await?;
    let Some(loaded) = bench.sqlite.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let mut comparison = Comparison::new(
        "B2",
        &format!("MoveOpportunity via gRPC, SQLite, {} in flight", settings.concurrency),
        "sqlite3 shell, same UPDATE + INSERT per transaction in a tight loop (WAL, synchronous=NORMAL)",
        "tx/s",
        Goal::AtLeast(0.5),
    );
    let mut errors = 0;
    warm_up_moves(loaded, settings.concurrency).await?;
    for pair in 0..settings.pairs {
        let anchor =
            anchors::sqlite_moves(&settings.sqlite_path, loaded.ids, settings.sqlite_transactions, pair as u64 + 1)?;
        let funnel = run_moves(loaded, settings.concurrency, settings.seconds, None).await?;
        errors += funnel.errors;
        comparison.push(funnel.throughput, anchor);
    }
    comparison.notes = format!("{errors} errors; {} opportunities", settings.sqlite_opportunities);
    bench.results.comparisons.push(comparison);
    let (rss, hwm) = loaded.server.memory_kib();
    bench.note(
        "service RSS after B2 load (SQLite)",
        format!("{:.1} MiB (peak {:.1} MiB)", rss as f64 / 1024.0, hwm as f64 / 1024.0),
    );
    Ok(())
}

/// Page tokens spread over the whole table, to start pages anywhere.
async fn page_tokens(client: &mut PipelineServiceClient<Channel>) -> anyhow::Result<Vec<String>> {
    let mut tokens = vec![String::new()];
    let mut token = String::new();
    loop {
        let request = pb::ListOpportunitiesRequest {
            pipeline: "sales".to_owned(),
            page_size: 1000,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = client.list_opportunities(request).await?.into_inner();
        if page.next_page_token.is_empty() {
            return Ok(tokens);
        }
        token = page.next_page_token;
        tokens.push(token.clone());
    }
}

pub async fn b3(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B3: GetOpportunity and ListOpportunities on PostgreSQL vs pgbench");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let pgbench = pgbench(bench, loaded);
    let client = loaded.server.client().await?;
    let ids: Arc<Vec<String>> = Arc::new(loaded.open_opportunities()?.into_iter().map(|open| open.id).collect());
    let tokens = Arc::new(page_tokens(&mut client.clone()).await?);
    let shape =
        LoadShape { concurrency: settings.concurrency, duration: Duration::from_secs(settings.seconds), rate: None };

    let get_client = client.clone();
    let get: Operation = Arc::new(move |worker, iteration| {
        let mut client = get_client.clone();
        let ids = ids.clone();
        Box::pin(async move {
            let index = spread(worker, iteration, ids.len());
            client.get_opportunity(pb::GetOpportunityRequest { id: ids[index].clone() }).await?;
            Ok(())
        })
    });
    let channel = loaded.server.channel().await?;
    let list: Operation = Arc::new(move |worker, iteration| {
        let channel = channel.clone();
        let tokens = tokens.clone();
        Box::pin(async move {
            let index = spread(worker, iteration, tokens.len());
            let request = pb::ListOpportunitiesRequest {
                pipeline: "sales".to_owned(),
                page_size: 50,
                page_token: tokens[index].clone(),
                ..Default::default()
            };
            framed::list_opportunities(channel, request).await?;
            Ok(())
        })
    });
    for (id, what, script, operation) in [
        ("B3 get", "GetOpportunity via gRPC", "pg_get.sql", get),
        ("B3 list", "ListOpportunities via gRPC, page of 50", "pg_page.sql", list),
    ] {
        let mut comparison = Comparison::new(
            id,
            &format!("{what}, PostgreSQL, {} in flight", settings.concurrency),
            &format!("pgbench -M prepared -c {} -j 2, bench/{script}", settings.concurrency),
            "calls/s",
            Goal::AtLeast(0.5),
        );
        let mut errors = 0;
        loadgen::warm_up(settings.concurrency, operation.clone()).await?;
        for _ in 0..settings.pairs {
            let anchor = pgbench.tps(script)?;
            let funnel = loadgen::run(shape, operation.clone()).await?;
            report_load(what, &funnel);
            errors += funnel.errors;
            comparison.push(funnel.throughput, anchor);
        }
        comparison.notes = format!("{errors} errors");
        bench.results.comparisons.push(comparison);
    }
    Ok(())
}

/// A pseudo-random index in `0..len` that differs per worker and call.
fn spread(worker: usize, iteration: u64, len: usize) -> usize {
    let mut state =
        (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ iteration.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state ^= state >> 31;
    (state % len.max(1) as u64) as usize
}

pub async fn b4(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B4: p99 of MoveOpportunity at half of B1's anchor rate vs pgbench -R");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let pgbench = pgbench(bench, loaded);
    let anchor_tps =
        if bench.b1_anchor_tps.is_empty() { pgbench.tps("pg_move.sql")? } else { median(&bench.b1_anchor_tps) };
    let rate = (anchor_tps / 2.0).max(1.0);
    let mut comparison = Comparison::new(
        "B4",
        &format!("p99 of MoveOpportunity at {rate:.0}/s (open loop, {} workers)", settings.concurrency),
        &format!("pgbench -R {rate:.0} -c {}, latency + schedule lag", settings.concurrency),
        "p99 ms",
        Goal::AtMost(2.0),
    );
    let mut achieved = Vec::new();
    warm_up_moves(loaded, settings.concurrency).await?;
    for _ in 0..settings.pairs {
        let anchor = pgbench.p99_at_rate("pg_move.sql", rate)? / 1000.0;
        let funnel = run_moves(loaded, settings.concurrency, settings.seconds, Some(rate)).await?;
        achieved.push(funnel.throughput);
        comparison.push(funnel.p99_micros as f64 / 1000.0, anchor);
    }
    comparison.notes = format!("funnel achieved {:.0}/s of {rate:.0}/s", median(&achieved));
    bench.results.comparisons.push(comparison);
    Ok(())
}

pub async fn b8(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B8: MoveOpportunity throughput with and without a training run");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let mut comparison = Comparison::new(
        "B8",
        "B1's funnel side while a training process runs (loop of load histories + train_model)",
        "B1's funnel side without training",
        "tx/s",
        Goal::AtLeast(0.6),
    );
    warm_up_moves(loaded, settings.concurrency).await?;
    for _ in 0..settings.pairs {
        let without = run_moves(loaded, settings.concurrency, settings.seconds, None).await?;
        let mut trainer = Command::new(std::env::current_exe()?)
            .args(["train-child", "--database-url", &loaded.url])
            .stdout(Stdio::null())
            .spawn()?;
        // Let it get past connecting, into reading and fitting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let with = run_moves(loaded, settings.concurrency, settings.seconds, None).await;
        let _ = trainer.kill();
        let _ = trainer.wait();
        comparison.push(with?.throughput, without.throughput);
    }
    comparison.notes = "trainer unpinned, competes for both cores".to_owned();
    bench.results.comparisons.push(comparison);
    Ok(())
}
