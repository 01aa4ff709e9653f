//! WatchEvents: stored events first, then live ones, from the `events`
//! table only, so a watcher sees the same feed whoever wrote it.
//!
//! One task per watcher reads pages of at most [`PAGE_SIZE`] events after
//! the last one sent and pushes them into a channel of [`CHANNEL_CAPACITY`],
//! awaiting room: a slow consumer slows its own task, and the server holds
//! at most one page and one channel per watcher. When caught up, the task
//! waits for a commit of this process or [`POLL_INTERVAL`] (writes of other
//! processes: the scorer, other replicas), whichever comes first.

use std::time::Duration;

use funnel_proto::v1 as pb;
use funnel_store::{EventFilter, EventKind, EventRecord, Store};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::convert::{self as c, Checked};
use crate::error::{invalid_argument, store_status};

/// Events read per query.
const PAGE_SIZE: u64 = 500;
/// Events buffered per watcher between its task and the response stream.
const CHANNEL_CAPACITY: usize = 64;
/// How often a caught-up watcher looks for writes of other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// The response stream of WatchEvents.
pub type EventStream = ReceiverStream<Result<pb::Event, Status>>;

/// Validates the request: the sequence to start after, and the filter.
pub async fn start(store: &Store, request: pb::WatchEventsRequest) -> Checked<(i64, EventFilter)> {
    let pb::WatchEventsRequest { start, pipeline, types } = request;
    let pipeline = if pipeline.is_empty() { None } else { Some(c::pipeline_name("pipeline", &pipeline)?) };
    let mut kinds = Vec::with_capacity(types.len());
    for (index, value) in types.into_iter().enumerate() {
        kinds.push(kind_from_pb(&format!("types[{index}]"), value)?);
    }
    if let Some(pipeline) = &pipeline {
        // Unknown is NOT_FOUND rather than a feed that stays silent forever.
        store.get_pipeline(pipeline).await.map_err(store_status)?;
    }
    let last = store.last_event_sequence().await.map_err(store_status)?;
    let after = match start {
        None => last,
        Some(pb::watch_events_request::Start::FromBeginning(true)) => 0,
        Some(pb::watch_events_request::Start::FromBeginning(false)) => {
            return Err(invalid_argument(
                "from_beginning",
                "must be true when set; leave start unset to watch from now",
            ));
        }
        Some(pb::watch_events_request::Start::AfterSequence(after)) if after < 0 => {
            return Err(invalid_argument("after_sequence", "must not be negative"));
        }
        Some(pb::watch_events_request::Start::AfterSequence(after)) if after > last => {
            return Err(Status::out_of_range(format!(
                "after_sequence {after} is beyond the latest event {last}: was the feed reset?"
            )));
        }
        Some(pb::watch_events_request::Start::AfterSequence(after)) => after,
    };
    Ok((after, EventFilter { pipeline, kinds }))
}

/// Starts the watcher's task; it ends when the client goes away, on a store
/// error (sent as the final status), or when the server shuts down.
pub fn spawn(store: Store, after: i64, filter: EventFilter, stopping: watch::Receiver<bool>) -> EventStream {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(feed(store, after, filter, sender, stopping));
    ReceiverStream::new(receiver)
}

async fn feed(
    store: Store,
    mut last_sent: i64,
    filter: EventFilter,
    sender: mpsc::Sender<Result<pb::Event, Status>>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut commits = store.subscribe_events();
    loop {
        // Marked before reading, so a commit during the read wakes the wait.
        commits.borrow_and_update();
        let page = match store.events_after(last_sent, &filter, PAGE_SIZE).await {
            Ok(page) => page,
            Err(error) => {
                let _ = sender.send(Err(store_status(error))).await;
                return;
            }
        };
        let full_page = page.len() as u64 == PAGE_SIZE;
        for event in page {
            let sequence = event.sequence;
            tokio::select! {
                sent = sender.send(Ok(event_to_pb(event))) => {
                    if sent.is_err() {
                        return;
                    }
                }
                () = stop_requested(&mut stopping) => return say_goodbye(&sender, last_sent),
            }
            last_sent = sequence;
        }
        if full_page {
            continue;
        }
        tokio::select! {
            () = sender.closed() => return,
            () = stop_requested(&mut stopping) => return say_goodbye(&sender, last_sent),
            changed = commits.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
            // The next read numbers what other processes committed
            // (PostgreSQL), as every read of the feed does.
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Resolves once the server starts shutting down; never if it cannot.
async fn stop_requested(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Ends the stream with UNAVAILABLE so that the client reconnects and
/// resumes; without room in the channel it just ends.
fn say_goodbye(sender: &mpsc::Sender<Result<pb::Event, Status>>, last_sent: i64) {
    let status = Status::unavailable(format!("the server is shutting down; resume with after_sequence {last_sent}"));
    let _ = sender.try_send(Err(status));
}

fn kind_from_pb(field: &str, value: i32) -> Checked<EventKind> {
    use pb::EventType as T;
    let kind = match T::try_from(value) {
        Ok(T::PipelineCreated) => EventKind::PipelineCreated,
        Ok(T::PipelineUpdated) => EventKind::PipelineUpdated,
        Ok(T::OpportunityCreated) => EventKind::OpportunityCreated,
        Ok(T::OpportunityImported) => EventKind::OpportunityImported,
        Ok(T::OpportunityUpdated) => EventKind::OpportunityUpdated,
        Ok(T::OpportunityAdvanced) => EventKind::OpportunityAdvanced,
        Ok(T::OpportunityMovedBack) => EventKind::OpportunityMovedBack,
        Ok(T::OpportunityWon) => EventKind::OpportunityWon,
        Ok(T::OpportunityLeaked) => EventKind::OpportunityLeaked,
        Ok(T::OpportunityReopened) => EventKind::OpportunityReopened,
        Ok(T::ActivityLogged) => EventKind::ActivityLogged,
        Ok(T::ScoresChanged) => EventKind::ScoresChanged,
        Ok(T::ModelRegistered) => EventKind::ModelRegistered,
        Ok(T::ModelActivated) => EventKind::ModelActivated,
        Ok(T::Unspecified) => return Err(invalid_argument(field, "EVENT_TYPE_UNSPECIFIED is not a filter")),
        Err(_) => return Err(invalid_argument(field, &format!("{value} is not an EventType"))),
    };
    Ok(kind)
}

fn kind_to_pb(kind: EventKind) -> pb::EventType {
    use pb::EventType as T;
    match kind {
        EventKind::PipelineCreated => T::PipelineCreated,
        EventKind::PipelineUpdated => T::PipelineUpdated,
        EventKind::OpportunityCreated => T::OpportunityCreated,
        EventKind::OpportunityImported => T::OpportunityImported,
        EventKind::OpportunityUpdated => T::OpportunityUpdated,
        EventKind::OpportunityAdvanced => T::OpportunityAdvanced,
        EventKind::OpportunityMovedBack => T::OpportunityMovedBack,
        EventKind::OpportunityWon => T::OpportunityWon,
        EventKind::OpportunityLeaked => T::OpportunityLeaked,
        EventKind::OpportunityReopened => T::OpportunityReopened,
        EventKind::ActivityLogged => T::ActivityLogged,
        EventKind::ScoresChanged => T::ScoresChanged,
        EventKind::ModelRegistered => T::ModelRegistered,
        EventKind::ModelActivated => T::ModelActivated,
    }
}

fn event_to_pb(event: EventRecord) -> pb::Event {
    pb::Event {
        sequence: event.sequence,
        r#type: kind_to_pb(event.kind) as i32,
        pipeline: event.pipeline,
        opportunity_id: event.opportunity_id.map(|id| id.to_string()).unwrap_or_default(),
        occurred_at: Some(c::timestamp(event.occurred_at)),
        recorded_at: Some(c::timestamp(event.recorded_at)),
        payload_json: event.payload,
    }
}
