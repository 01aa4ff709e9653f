//! Point reads by id on PostgreSQL, coalesced: while a few reads are in
//! flight, the ids asked for meanwhile wait and go together as one
//! `WHERE id = ANY($1)`. A lookup by key costs PostgreSQL mostly per
//! statement (a round trip, bind, executor start-up), not per row, and the
//! service pays a round trip per statement too (issue 7, B3). Nothing
//! waits on a timer: when fewer than `StoreOptions::coalesced_reads`
//! batches run, a read starts at once, so a quiet service answers as
//! before, and a busy one answers each read after at most the batch ahead
//! of it.
//!
//! Each batch runs in a task of its own, so a caller that gives up (a
//! cancelled request) never strands the reads queued behind it; a batch
//! that hangs (a dead connection) fails its reads after the pool's acquire
//! timeout rather than holding the ones behind it for longer. A batch
//! sees the rows as of its statement, which starts after every read in it
//! was asked for: what a read of its own would have seen, or newer.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::raw::{self, Bind, Positional};
use crate::{Result, Store, StoreError};

/// Most ids in one statement; the rest wait for the next batch.
const MAX_BATCH: usize = 64;

/// A row type read by id through a [`Coalescer`].
pub(crate) trait BatchRead: Positional + Clone + Send + 'static {
    /// The read of the rows whose ids are in the array `$1`.
    const BY_IDS: &'static str;

    fn id(&self) -> Uuid;

    fn coalescer(store: &Store) -> &Coalescer<Self>;
}

type Reply<M> = oneshot::Sender<Result<Option<M>>>;

/// The reads waiting for a batch, and how many batches run.
pub(crate) struct Coalescer<M> {
    state: Mutex<State<M>>,
    /// Most batches running at once; 0 turns coalescing off.
    in_flight: usize,
    /// How long a batch may take before its reads fail as UNAVAILABLE.
    timeout: Duration,
}

struct State<M> {
    waiting: Vec<(Uuid, Reply<M>)>,
    running: usize,
}

impl<M> Coalescer<M> {
    pub(crate) fn new(in_flight: usize, timeout: Duration) -> Self {
        Self { state: Mutex::new(State { waiting: Vec::new(), running: 0 }), in_flight, timeout }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.in_flight > 0
    }

    /// Queues `id`; hands back a batch to run if a batch may start now.
    fn enqueue(&self, id: Uuid, reply: Reply<M>) -> Option<Vec<(Uuid, Reply<M>)>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.waiting.push((id, reply));
        if state.running >= self.in_flight {
            return None;
        }
        state.running += 1;
        Some(take_batch(&mut state.waiting))
    }

    /// After a batch: the next one to run in its place, or none (and one
    /// batch fewer runs).
    fn next_batch(&self) -> Option<Vec<(Uuid, Reply<M>)>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.waiting.is_empty() {
            state.running = state.running.saturating_sub(1);
            return None;
        }
        Some(take_batch(&mut state.waiting))
    }
}

fn take_batch<T>(waiting: &mut Vec<T>) -> Vec<T> {
    if waiting.len() <= MAX_BATCH {
        return std::mem::take(waiting);
    }
    waiting.drain(..MAX_BATCH).collect()
}

/// The row of `id`, if any, read in a batch with whatever other reads of
/// the same kind are waiting.
pub(crate) async fn read<M: BatchRead>(store: &Store, id: Uuid) -> Result<Option<M>> {
    let (reply, answer) = oneshot::channel();
    if let Some(batch) = M::coalescer(store).enqueue(id, reply) {
        tokio::spawn(run(store.clone(), batch));
    }
    answer.await.map_err(|_| StoreError::Internal("a coalesced read ended without an answer".to_owned()))?
}

/// Runs batches until none is waiting.
async fn run<M: BatchRead>(store: Store, mut batch: Vec<(Uuid, Reply<M>)>) {
    let slot = Slot(M::coalescer(&store));
    loop {
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let fetch = raw::fetch::<M>(&store, M::BY_IDS.to_owned(), vec![Bind::Uuids(ids)]);
        let fetched = tokio::time::timeout(slot.0.timeout, fetch).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the database did not answer a read within {} ms",
                slot.0.timeout.as_millis()
            )))
        });
        match fetched {
            Ok(rows) => answer(batch, rows),
            Err(error) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        match M::coalescer(&store).next_batch() {
            Some(next) => batch = next,
            None => {
                std::mem::forget(slot);
                return;
            }
        }
    }
}

/// A running batch's place. Dropped only if its task ends early (a panic),
/// when it gives the place back; if no batch is left to serve the waiting
/// reads, they fail rather than wait forever.
struct Slot<'a, M>(&'a Coalescer<M>);

impl<M> Drop for Slot<'_, M> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.running = state.running.saturating_sub(1);
        if state.running == 0 {
            state.waiting.clear();
        }
    }
}

/// Gives each read its row; a row asked for twice in one batch is cloned.
fn answer<M: BatchRead>(batch: Vec<(Uuid, Reply<M>)>, mut rows: Vec<M>) {
    let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
    for (index, (id, reply)) in batch.into_iter().enumerate() {
        let asked_again = ids[index + 1..].contains(&id);
        let row = match rows.iter().position(|row| row.id() == id) {
            Some(position) if asked_again => Some(rows[position].clone()),
            Some(position) => Some(rows.swap_remove(position)),
            None => None,
        };
        // The caller may have given up; its row is simply dropped.
        let _ = reply.send(Ok(row));
    }
}
