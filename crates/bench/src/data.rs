//! Bench data: simulated opportunities (fixed seed) imported with
//! `Store::import_batch`, once per database, and the id table the anchors
//! draw their keys from.

use std::time::Instant;

use funnel_dataset::{
    ActivityKind as DatasetActivityKind, OpportunityRecord, RecordStatus, SimulationConfig, simulate,
};
use funnel_domain::{ActivityKind, Status};
use funnel_store::{ImportActivity, ImportHistory, ImportRecord, Store, StoreOptions};

/// Records per import transaction (the service's own batch limit).
const IMPORT_BATCH: usize = 1_000;

/// The simulation every benchmark uses.
pub const SEED: u64 = 7;

/// What a load did, or `None` when the data was already there.
#[derive(Debug, Clone, Copy)]
pub struct ImportFigures {
    pub opportunities: u64,
    pub seconds: f64,
}

/// Connects (pool of `max_connections`), migrates and loads `opportunities`
/// simulated records unless the pipeline already holds them.
pub async fn prepare(url: &str, opportunities: u64) -> anyhow::Result<(Store, Option<ImportFigures>)> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
    store.migrate().await?;
    let present = store.list_opportunities(&funnel_store::OpportunityFilter::default(), 1, "").await?.items.len();
    if present > 0 {
        return Ok((store, None));
    }
    let config = SimulationConfig { seed: SEED, opportunities, ..SimulationConfig::default() };
    let simulation = simulate(&config)?;
    println!("loading {opportunities} simulated opportunities into {url}");
    let started = Instant::now();
    let mut imported = 0_u64;
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (index, record) in simulation.enumerate() {
        batch.push(import_record(i64::try_from(index)?, record));
        if batch.len() == IMPORT_BATCH {
            imported += store.import_batch(std::mem::take(&mut batch)).await?.imported;
            if imported.is_multiple_of(50_000) {
                println!("  {imported} imported ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
    }
    imported += store.import_batch(batch).await?.imported;
    let seconds = started.elapsed().as_secs_f64();
    println!("  {imported} imported in {seconds:.1} s ({:.0}/s)", imported as f64 / seconds);
    Ok((store, Some(ImportFigures { opportunities: imported, seconds })))
}

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
    let activities = record
        .activities
        .into_iter()
        .map(|activity| ImportActivity {
            kind: Some(match activity.kind {
                DatasetActivityKind::Call => ActivityKind::Call,
                DatasetActivityKind::Email => ActivityKind::Email,
                DatasetActivityKind::Meeting => ActivityKind::Meeting,
                DatasetActivityKind::Note => ActivityKind::Note,
            }),
            occurred_at: Some(activity.occurred_at),
            actor: activity.actor,
            note: activity.note,
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
        activities,
    }
}
