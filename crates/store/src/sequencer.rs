//! How events get their sequence numbers on PostgreSQL.
//!
//! A writer inserts its events unnumbered into `pending_events`, in its own
//! transaction, and commits. Then a round moves every committed pending
//! event into `events`, numbered on from `event_counter`, in one short
//! transaction that locks the counter's table. The feed stays gap-free
//! and in commit order: a round only sees committed events and hands out
//! the next numbers under the lock, and a watcher only reads `events`.
//!
//! Why not number in the writer's transaction, as SQLite does: the counter's
//! row lock would then be held through every writer's commit, so commits
//! (and their WAL flushes) queue one behind the other. Here writers commit
//! in parallel and share a flush, and one round numbers all of them (issue
//! 7, B1: pgbench's version of the two designs, 16 clients, ran ~500 and
//! ~3,400 tx/s).
//!
//! A writer asks for a round after its commit and answers without waiting
//! for it; a reader of the feed (`events_after`, `last_event_sequence`)
//! first numbers every event committed before it, so a client that reads
//! the feed after a write still sees its event. Waiting in the writer put
//! one to two rounds (each a commit of its own) on every write's path
//! (issue 7, B4: a move's median at a fixed rate 5.4-8.2 -> 4.7-5.1 ms over
//! four runs each; B1's throughput, bound by CPU, did not move). Rounds of one
//! process run one at a time; a round asked for while another waits to
//! start is that one, and a reader whose events an earlier round already
//! took does not start another. Events of a process that died between its
//! commit and a round are numbered by the next round of any process: at
//! start-up, on the next write, by a watcher's poll or by a reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sea_orm::sqlx::{self, Row};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseTransaction, Statement};
use tokio::sync::Mutex;

use crate::events::NewEvent;
use crate::time::to_micros;
use crate::{Backend, Result, Store, StoreError, raw};

/// One round (`migration_event_round.rs` has the function): one prepared
/// statement and its own transaction, so one round trip, which the server
/// runs to its commit even if the caller goes away. The counter's table
/// lock makes rounds of all processes run one at a time (and waits out a
/// writer of an older version that still bumps the counter itself); reads
/// of the counter go on. Every committed pending event is one that a writer
/// has in flight or a stopped process left behind, so a round's size is
/// bounded by the writes in flight, not by the data.
const ROUND: &str = "SELECT funnel_event_round() AS moved";

/// Each event leaves a dead row in `pending_events`, and every round reads
/// the whole table: after this many events a round vacuums it. Autovacuum
/// would, where it is on, but it can be off (as on this project's test machines),
/// and a queue table that only grows makes every round slower (issue 7,
/// B1: 17 ms rounds over 370,000 dead rows).
const VACUUM_EVERY_EVENTS: u64 = 2_000;

/// Without truncation: giving the emptied pages back needs the table's
/// exclusive lock, and under a steady stream of writers the attempt kept a
/// VACUUM waiting for over a minute while the next ones queued behind it,
/// each holding a pooled connection (issue 7: B8 fell from ~2,000 to ~400
/// tx/s after B4). The deleted rows' space is reused in place.
const VACUUM: &str = "VACUUM (TRUNCATE false) pending_events";

const ANY_PENDING: &str = "SELECT EXISTS (SELECT 1 FROM pending_events) AS any";

pub(crate) mod pending_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pending_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub event_type: String,
        pub pipeline: String,
        pub opportunity_id: Option<Uuid>,
        pub payload: String,
        pub occurred_at: i64,
        pub recorded_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// This process's rounds (see the module documentation).
#[derive(Default)]
pub(crate) struct Sequencer {
    running: Mutex<()>,
    /// Rounds begun, and the number of the last one that finished.
    started: AtomicU64,
    finished: AtomicU64,
    /// Events moved since `pending_events` was last vacuumed.
    moved_since_vacuum: AtomicU64,
    /// A VACUUM is running: one at a time, never a queue of them.
    vacuuming: Arc<AtomicBool>,
    /// A round was asked for and has not begun: the next to begin covers
    /// every commit made before it.
    asked: AtomicBool,
}

/// Inserts `events` unnumbered in the caller's transaction (PostgreSQL).
pub(crate) async fn append_pending(txn: &DatabaseTransaction, events: Vec<NewEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let recorded_at = to_micros(chrono::Utc::now());
    let rows = events
        .into_iter()
        .map(|new| pending_event::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            event_type: Set(new.kind.as_str().to_owned()),
            pipeline: Set(new.pipeline),
            opportunity_id: Set(new.opportunity_id.map(|id| id.uuid())),
            payload: Set(new.payload.to_string()),
            occurred_at: Set(to_micros(new.occurred_at)),
            recorded_at: Set(recorded_at),
        })
        .collect();
    crate::bulk::insert_all(txn, rows, "").await
}

impl Store {
    /// Returns once every event committed before the call is numbered. Runs
    /// a round unless one that started after the call has finished. The
    /// round runs in its own task: a caller that gives up (a client's
    /// deadline) does not abandon it halfway.
    pub(crate) async fn sequence_committed_events(&self) -> Result<()> {
        let store = self.clone();
        let wanted = self.sequencer.started.load(Ordering::SeqCst) + 1;
        let round = tokio::spawn(async move { store.round_unless_done(wanted).await });
        round.await.map_err(|error| StoreError::Internal(format!("the event numbering task failed: {error}")))?
    }

    /// After a commit that left events pending: starts a round in the
    /// background unless one already asked for has yet to begin. A failure
    /// is logged: the change and its events are committed, and the next
    /// round (or reader) numbers them.
    pub(crate) fn ask_for_round(&self) {
        if self.sequencer.asked.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        let wanted = self.sequencer.started.load(Ordering::SeqCst) + 1;
        tokio::spawn(async move {
            if let Err(error) = store.round_unless_done(wanted).await {
                tracing::warn!(%error, "events committed but not numbered yet");
            }
        });
    }

    async fn round_unless_done(&self, wanted: u64) -> Result<()> {
        let sequencer = &self.sequencer;
        let _running = sequencer.running.lock().await;
        if sequencer.finished.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        let round = sequencer.started.fetch_add(1, Ordering::SeqCst) + 1;
        // Cleared after the count: a writer's task that returns because this
        // round covers it read the count before it moved, so asked before
        // this clear, which clears its ask too. Writers that ask later are
        // covered by this round (it has not read yet) or start the next.
        sequencer.asked.store(false, Ordering::SeqCst);
        let moved = self.run_round().await?;
        sequencer.finished.store(round, Ordering::SeqCst);
        if moved > 0 {
            self.event_signal.send_modify(|commits| *commits = commits.wrapping_add(1));
        }
        let since_vacuum = sequencer.moved_since_vacuum.fetch_add(moved, Ordering::SeqCst) + moved;
        if since_vacuum >= VACUUM_EVERY_EVENTS && !sequencer.vacuuming.swap(true, Ordering::SeqCst) {
            sequencer.moved_since_vacuum.store(0, Ordering::SeqCst);
            // Outside the round's transaction (VACUUM cannot run in one); it
            // does not block writers or rounds.
            let pool = self.db.get_postgres_connection_pool().clone();
            let vacuuming = sequencer.vacuuming.clone();
            tokio::spawn(async move {
                if let Err(error) = sqlx::raw_sql(VACUUM).execute(&pool).await {
                    tracing::warn!(%error, "vacuuming pending_events failed; the next cadence tries again");
                }
                vacuuming.store(false, Ordering::SeqCst);
            });
        }
        Ok(())
    }

    /// Numbers every event committed before the call: those of writes that
    /// did not wait for their round, and those a process left pending when
    /// it stopped between its commit and a round. Cheap (one read) when
    /// there are none. A no-op on SQLite, whose writers number their own
    /// events.
    pub async fn number_pending_events(&self) -> Result<()> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        let statement = Statement::from_string(self.db.get_database_backend(), ANY_PENDING);
        let any = match self.db.query_one_raw(statement).await? {
            Some(row) => row.try_get::<bool>("", "any")?,
            None => false,
        };
        if any { self.sequence_committed_events().await } else { Ok(()) }
    }

    /// One round; returns how many events it numbered.
    async fn run_round(&self) -> Result<u64> {
        let pool = self.db.get_postgres_connection_pool();
        let row = sqlx::query(ROUND).fetch_one(pool).await.map_err(raw::execute_error)?;
        let moved: i64 = row.try_get("moved").map_err(|error| StoreError::Internal(error.to_string()))?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }
}
