//! The client-streaming import: one streamed message is one batch and one
//! transaction, so memory stays bounded by the batch size whatever the size
//! of the import.

use funnel_domain::{Status as DomainStatus, limits};
use funnel_proto::v1 as pb;
use funnel_store::{ImportActivity, ImportHistory, ImportRecord, ImportRejection, Store};
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};
use tracing::{info, warn};

use crate::convert as c;
use crate::error::{invalid_argument, store_status};

/// An import stream that brought in at least this many opportunities ends by
/// refreshing the planner's statistics (`Store::refresh_statistics`).
const ANALYZE_FROM_IMPORTED: i64 = 1_000;

pub async fn import_stream(
    store: &Store,
    mut stream: Streaming<pb::ImportOpportunitiesRequest>,
) -> Result<pb::ImportOpportunitiesResponse, Status> {
    let mut summary = pb::ImportOpportunitiesResponse::default();
    let mut next_index: i64 = 0;
    while let Some(message) = stream.next().await {
        let pb::ImportOpportunitiesRequest { opportunities } = message?;
        if opportunities.len() > limits::MAX_IMPORT_BATCH {
            return Err(invalid_argument(
                "opportunities",
                &format!(
                    "at most {} per message, got {}; split the batch",
                    limits::MAX_IMPORT_BATCH,
                    opportunities.len()
                ),
            ));
        }
        let mut records = Vec::with_capacity(opportunities.len());
        for imported in opportunities {
            let index = next_index;
            next_index += 1;
            match record(index, imported) {
                Ok(record) => records.push(record),
                Err(rejection) => summary.rejections.push(rejection_to_pb(rejection)),
            }
        }
        let outcome = store.import_batch(records).await.map_err(store_status)?;
        summary.batches += 1;
        summary.imported += outcome.imported as i64;
        summary.already_present += outcome.already_present as i64;
        summary.rejections.extend(outcome.rejections.into_iter().map(rejection_to_pb));
    }
    if summary.imported >= ANALYZE_FROM_IMPORTED {
        // The import is committed; fresh statistics only help what follows.
        if let Err(error) = store.refresh_statistics().await {
            warn!(%error, "refreshing the planner's statistics after the import failed");
        }
    }
    info!(
        imported = summary.imported,
        already_present = summary.already_present,
        rejected = summary.rejections.len(),
        batches = summary.batches,
        "import finished"
    );
    Ok(summary)
}

fn rejection_to_pb(rejection: ImportRejection) -> pb::ImportRejection {
    let ImportRejection { index, external_id, field, reason } = rejection;
    pb::ImportRejection { index, external_id, field, reason }
}

/// Converts one wire record; what cannot even be read (bad enum values,
/// malformed timestamps) is a rejection of this record only.
fn record(index: i64, imported: pb::ImportedOpportunity) -> Result<ImportRecord, ImportRejection> {
    let pb::ImportedOpportunity {
        pipeline,
        external_id,
        title,
        account,
        owner,
        amount,
        source,
        attributes,
        history,
        activities,
    } = imported;
    let reject =
        |field: String, reason: String| ImportRejection { index, external_id: external_id.clone(), field, reason };
    let from_status = |status: tonic::Status| {
        let field = tonic_types::StatusExt::get_details_bad_request(&status)
            .and_then(|details| details.field_violations.into_iter().next())
            .map(|violation| violation.field)
            .unwrap_or_default();
        reject(field, status.message().to_owned())
    };
    let mut history_entries = Vec::with_capacity(history.len());
    for (position, entry) in history.into_iter().enumerate() {
        let pb::ImportedHistoryEntry { stage, status, occurred_at, actor, reason, note } = entry;
        let status = match pb::OpportunityStatus::try_from(status) {
            Ok(pb::OpportunityStatus::Open) => Some(DomainStatus::Open),
            Ok(pb::OpportunityStatus::Won) => Some(DomainStatus::Won),
            Ok(pb::OpportunityStatus::Leaked) => Some(DomainStatus::Leaked),
            Ok(pb::OpportunityStatus::Unspecified) if position == 0 => Some(DomainStatus::Open),
            Ok(pb::OpportunityStatus::Unspecified) | Err(_) => None,
        };
        let occurred_at =
            c::optional_time(&format!("history[{position}].occurred_at"), occurred_at.as_ref()).map_err(from_status)?;
        history_entries.push(ImportHistory { stage, status, occurred_at, actor, reason, note });
    }
    let mut activity_entries = Vec::with_capacity(activities.len());
    for (position, entry) in activities.into_iter().enumerate() {
        let pb::ImportedActivity { kind, occurred_at, actor, note } = entry;
        let kind = c::activity_kind(&format!("activities[{position}].kind"), kind).map_err(from_status)?;
        let occurred_at = c::optional_time(&format!("activities[{position}].occurred_at"), occurred_at.as_ref())
            .map_err(from_status)?;
        activity_entries.push(ImportActivity { kind: Some(kind), occurred_at, actor, note });
    }
    Ok(ImportRecord {
        index,
        pipeline: pipeline.clone(),
        external_id: external_id.clone(),
        title,
        account,
        owner,
        amount: amount.map(|money| (money.currency_code, money.amount_minor)),
        source,
        attributes: attributes.into_iter().collect(),
        history: history_entries,
        activities: activity_entries,
    })
}
