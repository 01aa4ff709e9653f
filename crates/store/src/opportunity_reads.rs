//! The hot reads of opportunities (`GetOpportunity`, `ListOpportunities`,
//! the read that plans a stage change) straight through sqlx, on the pool
//! sea-orm manages. Through sea-orm, each call rebuilt the statement, moved
//! ~15 KB futures around and looked every column of every row up by a
//! freshly formatted name: ~5x the instructions of the query itself (issue
//! 7, B3). Same SQL shape, same rows, decoded by position into the entity's
//! `Model`. On PostgreSQL the reads by id go through `coalesce.rs`.

use uuid::Uuid;

use crate::coalesce::{self, BatchRead, Coalescer};
use crate::entity::opportunity;
use crate::model::OpportunityFilter;
use crate::raw::{self, Bind, Positional, placeholder, positional_decode};
use crate::{Backend, Result, Store};

/// The entity's columns in field order (`the_columns_are_the_entitys`).
macro_rules! columns {
    () => {
        "id, pipeline, stage, status, title, account, owner, currency_code, amount_minor, source, external_id, \
         attributes, created_at, stage_entered_at, closed_at, leak_reason, last_change_at, previous_stage, \
         sequence, version, updated_at, request_id, furthest_stage, last_activity_at"
    };
}

const SELECT: &str = concat!("SELECT ", columns!(), " FROM opportunities");
const BY_ID_POSTGRES: &str = concat!("SELECT ", columns!(), " FROM opportunities WHERE id = $1");
const BY_IDS_POSTGRES: &str = concat!("SELECT ", columns!(), " FROM opportunities WHERE id = ANY($1)");
const BY_ID_SQLITE: &str = concat!("SELECT ", columns!(), " FROM opportunities WHERE id = ?");

/// The row with its pipeline's stamp (the pipeline's foreign key makes the
/// join find it).
macro_rules! for_change {
    ($placeholder:literal) => {
        concat!(
            "SELECT o.*, p.version, p.created_at FROM (SELECT ",
            columns!(),
            " FROM opportunities WHERE id = ",
            $placeholder,
            ") o JOIN pipelines p ON p.name = o.pipeline"
        )
    };
}
const FOR_CHANGE_POSTGRES: &str = for_change!("$1");
const FOR_CHANGES_POSTGRES: &str = for_change!("ANY($1)");
const FOR_CHANGE_SQLITE: &str = for_change!("?");

/// An opportunity's row with its pipeline's version and creation time.
#[derive(Clone)]
pub(crate) struct ForChange {
    pub row: opportunity::Model,
    pub pipeline_version: i64,
    pub pipeline_created_at: i64,
}

/// The row of `id`, if any.
pub(crate) async fn by_id(store: &Store, id: Uuid) -> Result<Option<opportunity::Model>> {
    one(store, id, BY_ID_POSTGRES, BY_ID_SQLITE).await
}

/// The row of `id` and its pipeline's stamp, if any: what a stage change
/// reads before it decides.
pub(crate) async fn for_change(store: &Store, id: Uuid) -> Result<Option<ForChange>> {
    one(store, id, FOR_CHANGE_POSTGRES, FOR_CHANGE_SQLITE).await
}

/// One row by id: coalesced on PostgreSQL unless that is turned off, else
/// by `postgres` or `sqlite`, statements of one `id` placeholder.
async fn one<M: BatchRead>(store: &Store, id: Uuid, postgres: &str, sqlite: &str) -> Result<Option<M>> {
    let sql = match store.backend() {
        Backend::Postgres if M::coalescer(store).enabled() => return coalesce::read(store, id).await,
        Backend::Postgres => postgres,
        Backend::Sqlite => sqlite,
    };
    Ok(raw::fetch(store, sql.to_owned(), vec![Bind::Uuid(id)]).await?.pop())
}

impl BatchRead for opportunity::Model {
    const BY_IDS: &'static str = BY_IDS_POSTGRES;

    fn id(&self) -> Uuid {
        self.id
    }

    fn coalescer(store: &Store) -> &Coalescer<Self> {
        &store.opportunity_reads
    }
}

impl BatchRead for ForChange {
    const BY_IDS: &'static str = FOR_CHANGES_POSTGRES;

    fn id(&self) -> Uuid {
        self.row.id
    }

    fn coalescer(store: &Store) -> &Coalescer<Self> {
        &store.change_reads
    }
}

/// Up to `limit` rows matching `filter` with ids after `after`, in id order.
pub(crate) async fn page(
    store: &Store,
    filter: &OpportunityFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<opportunity::Model>> {
    let mut conditions: Vec<(&str, Bind)> = Vec::new();
    if let Some(pipeline) = &filter.pipeline {
        conditions.push(("pipeline =", Bind::Text(pipeline.to_string())));
    }
    if let Some(stage) = &filter.stage {
        conditions.push(("stage =", Bind::Text(stage.to_string())));
    }
    if let Some(status) = filter.status {
        conditions.push(("status =", Bind::Text(status.as_str().to_owned())));
    }
    if let Some(owner) = &filter.owner {
        conditions.push(("owner =", Bind::Text(owner.clone())));
    }
    if let Some(after) = after {
        conditions.push(("id >", Bind::Uuid(after)));
    }
    let backend = store.backend();
    let mut sql = String::from(SELECT);
    let mut binds = Vec::with_capacity(conditions.len() + 1);
    for (index, (condition, bind)) in conditions.into_iter().enumerate() {
        sql.push_str(if index == 0 { " WHERE " } else { " AND " });
        sql.push_str(condition);
        sql.push(' ');
        sql.push_str(&placeholder(backend, index + 1));
        binds.push(bind);
    }
    // The limit is written out, not bound: with `LIMIT $n` PostgreSQL's
    // generic plan guesses a tenth of the table, costs more than a custom
    // one, and so every call was planned afresh (`pg_prepared_statements`:
    // 0 generic, 7 custom). A statement per page size is prepared instead.
    sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
    raw::fetch(store, sql, binds).await
}

/// One row of [`SELECT`] by column position, without sqlx's check of each
/// value's type against the Rust type: the SELECT is this module's own, in
/// the entity's column order (`the_columns_are_the_entitys`), and the check
/// was ~5% of the service's CPU under ListOpportunities (issue 7, B3: list
/// 3,288-3,468 -> 3,471-3,676 calls/s in two A/B runs).
impl Positional for opportunity::Model {
    const WHAT: &'static str = "an opportunity row";

    positional_decode!(|row| {
        Ok(opportunity::Model {
            id: row.try_get_unchecked(0)?,
            pipeline: row.try_get_unchecked(1)?,
            stage: row.try_get_unchecked(2)?,
            status: row.try_get_unchecked(3)?,
            title: row.try_get_unchecked(4)?,
            account: row.try_get_unchecked(5)?,
            owner: row.try_get_unchecked(6)?,
            currency_code: row.try_get_unchecked(7)?,
            amount_minor: row.try_get_unchecked(8)?,
            source: row.try_get_unchecked(9)?,
            external_id: row.try_get_unchecked(10)?,
            attributes: row.try_get_unchecked(11)?,
            created_at: row.try_get_unchecked(12)?,
            stage_entered_at: row.try_get_unchecked(13)?,
            closed_at: row.try_get_unchecked(14)?,
            leak_reason: row.try_get_unchecked(15)?,
            last_change_at: row.try_get_unchecked(16)?,
            previous_stage: row.try_get_unchecked(17)?,
            sequence: row.try_get_unchecked(18)?,
            version: row.try_get_unchecked(19)?,
            updated_at: row.try_get_unchecked(20)?,
            request_id: row.try_get_unchecked(21)?,
            furthest_stage: row.try_get_unchecked(22)?,
            last_activity_at: row.try_get_unchecked(23)?,
        })
    });
}

/// One row of [`FOR_CHANGE_POSTGRES`]: the opportunity's columns, then the stamp.
impl Positional for ForChange {
    const WHAT: &'static str = "an opportunity row with its pipeline's stamp";

    positional_decode!(|row| {
        Ok(ForChange {
            row: <opportunity::Model as Positional>::decode(row)?,
            pipeline_version: row.try_get(24)?,
            pipeline_created_at: row.try_get(25)?,
        })
    });
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    #[test]
    fn the_columns_are_the_entitys() {
        let entity: Vec<&str> = opportunity::Column::iter().map(|column| column.as_str()).collect();
        let listed: Vec<&str> = columns!().split(", ").collect();
        assert_eq!(listed, entity, "columns!() must list opportunity::Model's fields in order");
    }
}
