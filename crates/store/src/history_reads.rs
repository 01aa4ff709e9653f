//! The transitions and activities of a batch of opportunities, straight
//! through sqlx. Through sea-orm, a batch of 2,000 ids went as 2,000 bound
//! parameters, planned afresh each time; PostgreSQL chose a parallel scan of
//! the whole table and a sort, ~150 ms a batch and growing with the table
//! (issue 7, B6). On PostgreSQL the ids now go as one array, bounded by the
//! batch's first and last id so that the `(opportunity_id, ...)` index hands
//! the rows over in order, reading only the batch's stretch of it.

use uuid::Uuid;

use crate::entity::transition;
use crate::raw::{self, Bind, Positional, placeholder, positional_decode};
use crate::{Backend, Result, Store};

/// SQLite's bind limit is 32,766; a chunk stays well under it.
const SQLITE_CHUNK: usize = 5_000;

const TRANSITION_COLUMNS: &str = "id, opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
                                  occurred_at, recorded_at, actor, reason, note, previous_at";

/// An activity as the scorer reads it: whose, when, what kind, and whether
/// it is the latest before a moment rather than one from then on.
pub(crate) struct ActivityRow {
    pub opportunity_id: Uuid,
    pub occurred_at: i64,
    pub kind: String,
    pub earlier: bool,
}

/// The transitions of `ids`, by opportunity id then sequence.
pub(crate) async fn transitions(store: &Store, ids: &[Uuid]) -> Result<Vec<transition::Model>> {
    let select = format!("SELECT {TRANSITION_COLUMNS} FROM transitions");
    of_ids(store, &select, "opportunity_id, sequence", ids).await
}

/// The activities of `ids`, by opportunity id then time.
pub(crate) async fn activities(store: &Store, ids: &[Uuid]) -> Result<Vec<ActivityRow>> {
    let select = "SELECT opportunity_id, occurred_at, kind, CAST(0 AS BIGINT) FROM activities";
    of_ids(store, select, "opportunity_id, occurred_at, id", ids).await
}

/// The activities of `ids` at or after `since` (microseconds), plus each
/// one's latest before it (`earlier`), by opportunity id then time. The
/// latest before comes from one index probe per opportunity instead of
/// reading them all.
pub(crate) async fn activities_since(store: &Store, ids: &[Uuid], since: i64) -> Result<Vec<ActivityRow>> {
    let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else { return Ok(Vec::new()) };
    match store.backend() {
        Backend::Postgres => {
            let sql = "SELECT opportunity_id, occurred_at, kind, CAST(0 AS BIGINT), id FROM activities \
                       WHERE opportunity_id = ANY($1) AND opportunity_id BETWEEN $2 AND $3 AND occurred_at >= $4 \
                       UNION ALL \
                       SELECT ids.id, latest.occurred_at, latest.kind, CAST(1 AS BIGINT), latest.id FROM unnest($1::uuid[]) AS ids(id) \
                       CROSS JOIN LATERAL (SELECT occurred_at, kind, id FROM activities \
                       WHERE opportunity_id = ids.id AND occurred_at < $4 \
                       ORDER BY occurred_at DESC, id DESC LIMIT 1) AS latest \
                       ORDER BY 1, 2, 5";
            let binds = vec![Bind::Uuids(ids.to_vec()), Bind::Uuid(*first), Bind::Uuid(*last), Bind::Int(since)];
            raw::fetch(store, sql.to_owned(), binds).await
        }
        Backend::Sqlite => {
            let mut rows = Vec::new();
            // Each chunk's ids are bound twice.
            for chunk in ids.chunks(SQLITE_CHUNK) {
                let list = vec!["?"; chunk.len()].join(", ");
                // SQLite takes a bare column's value from the row that gave MAX().
                let sql = format!(
                    "SELECT opportunity_id, occurred_at, kind, CAST(0 AS BIGINT), id FROM activities \
                     WHERE opportunity_id IN ({list}) AND occurred_at >= ? \
                     UNION ALL \
                     SELECT opportunity_id, MAX(occurred_at), kind, CAST(1 AS BIGINT), id FROM activities \
                     WHERE opportunity_id IN ({list}) AND occurred_at < ? GROUP BY opportunity_id \
                     ORDER BY 1, 2, 5"
                );
                let mut binds: Vec<Bind> = chunk.iter().map(|id| Bind::Uuid(*id)).collect();
                binds.push(Bind::Int(since));
                binds.extend(chunk.iter().map(|id| Bind::Uuid(*id)));
                binds.push(Bind::Int(since));
                rows.extend(raw::fetch::<ActivityRow>(store, sql, binds).await?);
            }
            Ok(rows)
        }
    }
}

async fn of_ids<M: Positional>(store: &Store, select: &str, order: &str, ids: &[Uuid]) -> Result<Vec<M>> {
    let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else { return Ok(Vec::new()) };
    match store.backend() {
        Backend::Postgres => {
            let sql = format!(
                "{select} WHERE opportunity_id = ANY($1) AND opportunity_id BETWEEN $2 AND $3 ORDER BY {order}"
            );
            raw::fetch(store, sql, vec![Bind::Uuids(ids.to_vec()), Bind::Uuid(*first), Bind::Uuid(*last)]).await
        }
        Backend::Sqlite => {
            let mut rows = Vec::new();
            for chunk in ids.chunks(SQLITE_CHUNK) {
                let placeholders: Vec<String> =
                    (1..=chunk.len()).map(|position| placeholder(Backend::Sqlite, position)).collect();
                let sql = format!("{select} WHERE opportunity_id IN ({}) ORDER BY {order}", placeholders.join(", "));
                let binds = chunk.iter().map(|id| Bind::Uuid(*id)).collect();
                rows.extend(raw::fetch::<M>(store, sql, binds).await?);
            }
            Ok(rows)
        }
    }
}

impl Positional for transition::Model {
    const WHAT: &'static str = "a transition row";

    positional_decode!(|row| {
        Ok(transition::Model {
            id: row.try_get(0)?,
            opportunity_id: row.try_get(1)?,
            sequence: row.try_get(2)?,
            from_stage: row.try_get(3)?,
            to_stage: row.try_get(4)?,
            from_status: row.try_get(5)?,
            to_status: row.try_get(6)?,
            kind: row.try_get(7)?,
            occurred_at: row.try_get(8)?,
            recorded_at: row.try_get(9)?,
            actor: row.try_get(10)?,
            reason: row.try_get(11)?,
            note: row.try_get(12)?,
            previous_at: row.try_get(13)?,
        })
    });
}

impl Positional for ActivityRow {
    const WHAT: &'static str = "an activity row";

    positional_decode!(|row| {
        Ok(ActivityRow {
            opportunity_id: row.try_get(0)?,
            occurred_at: row.try_get(1)?,
            kind: row.try_get(2)?,
            earlier: row.try_get::<i64, _>(3)? != 0,
        })
    });
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    #[test]
    fn the_transition_columns_are_the_entitys() {
        let entity: Vec<&str> = transition::Column::iter().map(|column| column.as_str()).collect();
        let listed: Vec<&str> = TRANSITION_COLUMNS.split(", ").collect();
        assert_eq!(listed, entity, "TRANSITION_COLUMNS must list transition::Model's fields in order");
    }
}
