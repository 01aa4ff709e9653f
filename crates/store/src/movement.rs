//! Movement statistics: what happened in a pipeline between two dates,
//! aggregated in SQL, overall or per owner.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::PipelineName;
use sea_orm::ConnectionTrait;

use crate::pipelines::load as load_pipeline;
use crate::report::{Sql, read_snapshot};
use crate::time::to_micros;
use crate::{Result, Store};

/// What to count.
#[derive(Debug, Clone)]
pub struct MovementQuery {
    pub pipeline: PipelineName,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub by_owner: bool,
    pub owner: Option<String>,
}

/// One line: everybody (`owner` empty) or one owner.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MovementFigures {
    pub owner: String,
    pub created: i64,
    /// `(from, to, count)` forward moves, won included, in pipeline order.
    pub advanced: Vec<(String, String, i64)>,
    /// `(from, to, count)` backward moves, in pipeline order.
    pub moved_back: Vec<(String, String, i64)>,
    pub won: i64,
    pub leaked: i64,
    pub reopened: i64,
    pub open_at_end: i64,
    pub average_open_age_micros: Option<f64>,
}

impl Store {
    /// Lines ordered by owner; one line for everybody unless `by_owner`.
    pub async fn movement_stats(&self, query: &MovementQuery) -> Result<Vec<MovementFigures>> {
        let txn = read_snapshot(self).await?;
        let pipeline = load_pipeline(&txn, query.pipeline.as_str()).await?.def;
        let backend = txn.get_database_backend();
        let mut lines: BTreeMap<String, MovementFigures> = BTreeMap::new();
        if !query.by_owner {
            lines.insert(String::new(), MovementFigures::default());
        }

        let mut sql = Sql::new();
        let owner_column = if query.by_owner { "o.owner" } else { "''" };
        let (filter, group) = filters(&mut sql, query);
        let start = sql.bind(to_micros(query.start));
        let end = sql.bind(to_micros(query.end));
        sql.push(&format!(
            "SELECT {owner_column} AS owner, t.kind AS kind, t.from_stage AS from_stage, t.to_stage AS to_stage, \
               COUNT(*) AS moves FROM transitions t JOIN opportunities o ON o.id = t.opportunity_id \
             WHERE {filter} AND t.occurred_at >= {start} AND t.occurred_at < {end} \
             GROUP BY {group}t.kind, t.from_stage, t.to_stage"
        ));
        for row in txn.query_all_raw(sql.statement(backend)).await? {
            let owner: String = row.try_get("", "owner")?;
            let kind: String = row.try_get("", "kind")?;
            let from_stage: Option<String> = row.try_get("", "from_stage")?;
            let to_stage: String = row.try_get("", "to_stage")?;
            let moves: i64 = row.try_get("", "moves")?;
            let line = lines.entry(owner.clone()).or_insert_with(|| MovementFigures { owner, ..Default::default() });
            let pair = (from_stage.unwrap_or_default(), to_stage, moves);
            match kind.as_str() {
                "created" => line.created += moves,
                "advanced" => line.advanced.push(pair),
                "won" => {
                    line.won += moves;
                    line.advanced.push(pair);
                }
                "moved_back" => line.moved_back.push(pair),
                "leaked" => line.leaked += moves,
                _ => line.reopened += moves,
            }
        }

        let mut sql = Sql::new();
        let (filter, group) = filters(&mut sql, query);
        let end = sql.bind(to_micros(query.end));
        let owner_column = if query.by_owner { "o.owner" } else { "''" };
        // The state at the end of the window is the one the last row before
        // it left (rows of one opportunity occur in sequence order).
        sql.push(&format!(
            "WITH last_rows AS (SELECT t.opportunity_id, t.to_status, \
               ROW_NUMBER() OVER (PARTITION BY t.opportunity_id ORDER BY t.sequence DESC) AS recency \
               FROM transitions t JOIN opportunities o ON o.id = t.opportunity_id \
               WHERE {filter} AND t.occurred_at < {end}) \
             SELECT {owner_column} AS owner, COUNT(*) AS open_count, \
               CAST(AVG(CAST({end} - o.created_at AS DOUBLE PRECISION)) AS DOUBLE PRECISION) AS average_age \
             FROM last_rows l JOIN opportunities o ON o.id = l.opportunity_id \
             WHERE l.recency = 1 AND l.to_status = 'open'{group_by}",
            group_by = if group.is_empty() { String::new() } else { " GROUP BY o.owner".to_owned() }
        ));
        for row in txn.query_all_raw(sql.statement(backend)).await? {
            let owner: String = row.try_get("", "owner")?;
            let open_count: i64 = row.try_get("", "open_count")?;
            if open_count == 0 {
                continue;
            }
            let line = lines.entry(owner.clone()).or_insert_with(|| MovementFigures { owner, ..Default::default() });
            line.open_at_end = open_count;
            line.average_open_age_micros = row.try_get("", "average_age")?;
        }
        txn.commit().await?;

        let position = |key: &str| pipeline.stages().iter().position(|stage| stage.key.as_str() == key);
        let mut result: Vec<MovementFigures> = lines.into_values().collect();
        for line in &mut result {
            for pairs in [&mut line.advanced, &mut line.moved_back] {
                pairs.sort_by_key(|(from, to, _)| (position(from), position(to)));
            }
        }
        Ok(result)
    }
}

/// The WHERE conditions on `o` and the GROUP BY prefix.
fn filters(sql: &mut Sql, query: &MovementQuery) -> (String, &'static str) {
    let pipeline = sql.bind(query.pipeline.as_str());
    let mut filter = format!("o.pipeline = {pipeline}");
    if let Some(owner) = &query.owner {
        let owner = sql.bind(owner.as_str());
        filter.push_str(&format!(" AND o.owner = {owner}"));
    }
    (filter, if query.by_owner { "o.owner, " } else { "" })
}
