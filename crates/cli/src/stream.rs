//! Streams records into ImportOpportunities in bounded memory: a blocking
//! task reads the source and fills batches, a bounded channel hands them to
//! the client-streaming RPC, so at most a few batches are ever in flight.

use std::time::Instant;

use funnel_dataset::{ActivityKind, OpportunityRecord, RecordStatus, RowError};
use funnel_proto::v1 as pb;
use indicatif::ProgressBar;
use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;
use crate::error::{CliError, Result};

/// Opportunities per streamed message (the service accepts up to 1,000).
pub const IMPORT_BATCH_SIZE: usize = 500;

/// Batches read ahead of the RPC; bounds memory to this many plus one.
const BATCHES_IN_FLIGHT: usize = 2;

/// One item of a source: a record at its position (line), or a row that
/// could not be read. The same shape as the dataset readers yield.
pub type SourceItem = std::result::Result<(u64, OpportunityRecord), RowError>;

/// What one streamed import did.
#[derive(Debug, Clone)]
pub struct StreamOutcome {
    /// The service's summary.
    pub response: pb::ImportOpportunitiesResponse,
    /// Records sent.
    pub sent: u64,
    /// Rows the reader could not read, in source order.
    pub unreadable: Vec<RowError>,
    /// Maps the stream index of a rejection back to its source position.
    pub positions: PositionMap,
    pub elapsed_seconds: f64,
}

/// Stream index -> source position, stored as runs so that it stays small:
/// a new run starts only where the source skipped something.
#[derive(Debug, Clone, Default)]
pub struct PositionMap {
    /// `(first stream index, its position)`, ascending.
    runs: Vec<(u64, u64)>,
}

impl PositionMap {
    fn record(&mut self, index: u64, position: u64) {
        if self.position(index) != Some(position) {
            self.runs.push((index, position));
        }
    }

    /// Source position of the record sent at `index`.
    pub fn position(&self, index: u64) -> Option<u64> {
        let run_count = self.runs.partition_point(|(first_index, _)| *first_index <= index);
        let (first_index, first_position) = self.runs.get(run_count.checked_sub(1)?)?;
        Some(first_position + (index - first_index))
    }
}

/// Sends every record of `source` through ImportOpportunities. The progress
/// bar advances by record unless `progress_by_record` is false (the caller
/// drives it, e.g. by bytes read).
pub async fn stream_records<I>(
    client: &Client,
    source: I,
    progress: ProgressBar,
    progress_by_record: bool,
) -> Result<StreamOutcome>
where
    I: Iterator<Item = SourceItem> + Send + 'static,
{
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel::<pb::ImportOpportunitiesRequest>(BATCHES_IN_FLIGHT);
    let reader_progress = progress.clone();
    let reader =
        tokio::task::spawn_blocking(move || fill_batches(source, &sender, &reader_progress, progress_by_record));
    let mut pipeline = client.pipeline();
    let rpc_result = pipeline.import_opportunities(ReceiverStream::new(receiver)).await;
    // The reader ends on its own: at the end of the source, or when the RPC
    // has dropped the receiver after failing.
    let read = reader.await.map_err(|error| CliError::invalid("source", format!("reader task failed: {error}")))?;
    progress.finish_and_clear();
    let response = rpc_result.map_err(CliError::rpc("ImportOpportunities"))?.into_inner();
    Ok(StreamOutcome {
        response,
        sent: read.sent,
        unreadable: read.unreadable,
        positions: read.positions,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

struct ReadOutcome {
    sent: u64,
    unreadable: Vec<RowError>,
    positions: PositionMap,
}

fn fill_batches<I>(
    source: I,
    sender: &mpsc::Sender<pb::ImportOpportunitiesRequest>,
    progress: &ProgressBar,
    progress_by_record: bool,
) -> ReadOutcome
where
    I: Iterator<Item = SourceItem>,
{
    let mut outcome = ReadOutcome { sent: 0, unreadable: Vec::new(), positions: PositionMap::default() };
    let mut batch = Vec::with_capacity(IMPORT_BATCH_SIZE);
    for item in source {
        let (position, record) = match item {
            Ok(found) => found,
            Err(row_error) => {
                outcome.unreadable.push(row_error);
                continue;
            }
        };
        outcome.positions.record(outcome.sent, position);
        outcome.sent += 1;
        batch.push(imported_opportunity(record));
        if batch.len() == IMPORT_BATCH_SIZE {
            let full_batch = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH_SIZE));
            if sender.blocking_send(pb::ImportOpportunitiesRequest { opportunities: full_batch }).is_err() {
                return outcome;
            }
            if progress_by_record {
                progress.inc(IMPORT_BATCH_SIZE as u64);
            }
        }
    }
    let last_batch_size = batch.len() as u64;
    let sent_last_batch =
        !batch.is_empty() && sender.blocking_send(pb::ImportOpportunitiesRequest { opportunities: batch }).is_ok();
    if sent_last_batch && progress_by_record {
        progress.inc(last_batch_size);
    }
    outcome
}

/// The wire form of a record. Every field maps; checking is the service's job.
pub fn imported_opportunity(record: OpportunityRecord) -> pb::ImportedOpportunity {
    let OpportunityRecord {
        pipeline,
        external_id,
        title,
        account,
        owner,
        currency,
        amount_minor,
        source,
        attributes,
        history,
        activities,
    } = record;
    let mut imported_history = Vec::with_capacity(history.len());
    for entry in history {
        imported_history.push(pb::ImportedHistoryEntry {
            stage: entry.stage,
            status: wire_status(entry.status) as i32,
            occurred_at: Some(timestamp(entry.occurred_at)),
            actor: entry.actor,
            reason: entry.reason,
            note: entry.note,
        });
    }
    let mut imported_activities = Vec::with_capacity(activities.len());
    for entry in activities {
        imported_activities.push(pb::ImportedActivity {
            kind: wire_activity_kind(entry.kind) as i32,
            occurred_at: Some(timestamp(entry.occurred_at)),
            actor: entry.actor,
            note: entry.note,
        });
    }
    pb::ImportedOpportunity {
        pipeline,
        external_id,
        title,
        account,
        owner,
        amount: Some(pb::Money { currency_code: currency, amount_minor }),
        source,
        attributes: attributes.into_iter().collect(),
        history: imported_history,
        activities: imported_activities,
    }
}

pub fn wire_status(status: RecordStatus) -> pb::OpportunityStatus {
    match status {
        RecordStatus::Open => pb::OpportunityStatus::Open,
        RecordStatus::Won => pb::OpportunityStatus::Won,
        RecordStatus::Leaked => pb::OpportunityStatus::Leaked,
    }
}

pub fn wire_activity_kind(kind: ActivityKind) -> pb::ActivityKind {
    match kind {
        ActivityKind::Call => pb::ActivityKind::Call,
        ActivityKind::Email => pb::ActivityKind::Email,
        ActivityKind::Meeting => pb::ActivityKind::Meeting,
        ActivityKind::Note => pb::ActivityKind::Note,
    }
}

pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_skipped_lines() {
        let mut positions = PositionMap::default();
        // Lines 1 and 2 sent, line 3 unreadable, lines 4 and 5 sent.
        for (index, line) in [(0, 1), (1, 2), (2, 4), (3, 5)] {
            positions.record(index, line);
        }
        assert_eq!(positions.runs.len(), 2);
        assert_eq!(positions.position(1), Some(2));
        assert_eq!(positions.position(2), Some(4));
        assert_eq!(positions.position(3), Some(5));
    }
}
