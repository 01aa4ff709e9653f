//! The funnel report, aggregated in SQL on both backends (window functions;
//! percentiles by nearest rank with ROW_NUMBER and COUNT, since SQLite has no
//! percentile_cont). Only per-stage aggregates cross the wire, never rows of
//! opportunities. Definitions: `proto/funnel/v1/analytics.proto`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{PipelineDef, PipelineName};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, IsolationLevel, QueryResult, Statement,
    TransactionTrait, Value,
};

use crate::pipelines::load as load_pipeline;
use crate::time::to_micros;
use crate::{Backend, Result, Store};

/// Settings of a report's transaction on PostgreSQL (`SET LOCAL`: they end
/// with it). The sorts of a million-row pipeline spill to disk at the
/// default 4 MB; JIT compilation cost 1.8 s of a 9 s report at a million
/// opportunities, for queries that run once.
const REPORT_SETTINGS: &str = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off";

/// The 90th percentile's fraction for `percentile_disc`, which takes the
/// value at rank `ceil(f * n)` computed in floating point: 0.9 * 70 is
/// 63.00000000000001 there, so rank 64, not the nearest rank 63. Just
/// under 0.9 gives `ceil(0.9 n)` exactly for every n below 10^8.
const P90_FRACTION: &str = "0.899999999";

/// Leak reasons listed per stage, most frequent first.
const MAX_LEAK_REASONS: usize = 20;

/// How the window selects opportunities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowMode {
    /// Created within the window.
    Cohort,
    /// Any stage-history row within the window.
    Activity,
}

/// Where a rot point comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotSource {
    Configured,
    Learned,
}

/// Time in stage after which an open opportunity is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotPoint {
    pub after_micros: i64,
    pub source: RotSource,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub pipeline: PipelineName,
    pub start: Option<DateTime<Utc>>,
    pub end: DateTime<Utc>,
    pub mode: WindowMode,
    pub owner: Option<String>,
    pub source: Option<String>,
    /// Learned rot points by stage key; stages not listed use their
    /// `rot_after_days`, if any.
    pub learned_rot_points: BTreeMap<String, i64>,
    pub now: DateTime<Utc>,
}

/// Median and 90th percentile (nearest rank) of durations in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurationFigures {
    pub count: i64,
    pub median_micros: Option<i64>,
    pub p90_micros: Option<i64>,
}

/// A sum of money in one currency (`None`: opportunities without amount).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MoneyFigure {
    pub currency_code: Option<String>,
    pub amount_minor: i64,
    pub opportunities: i64,
}

/// One stage's line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageFigures {
    pub key: String,
    pub display_name: String,
    pub position: usize,
    pub reached: i64,
    pub entered: i64,
    pub advanced: i64,
    pub moved_back: i64,
    pub leaked: i64,
    pub still_open: i64,
    pub conversion_to_next: f64,
    pub cumulative_conversion: f64,
    pub leak_rate: f64,
    pub leak_reasons: Vec<(String, i64)>,
    pub time_to_advance: DurationFigures,
    pub time_to_leak: DurationFigures,
    pub open_amount: Vec<MoneyFigure>,
    pub weighted_open_amount: Vec<MoneyFigure>,
    pub stale: i64,
    pub rot_point: Option<RotPoint>,
}

/// The report.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelFigures {
    pub pipeline: PipelineDef,
    pub opportunities: i64,
    pub won: i64,
    pub leaked: i64,
    pub open: i64,
    pub win_rate: f64,
    pub median_time_to_win_micros: Option<i64>,
    pub stages: Vec<StageFigures>,
}

/// A statement under construction with `$n` placeholders, which both
/// sqlx drivers accept (SQLite reads `$n` as parameter n).
pub(crate) struct Sql {
    pub text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new() -> Self {
        Self { text: String::new(), values: Vec::new() }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub fn statement(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.text, self.values)
    }
}

/// One snapshot for all the statements of a report, so that its numbers
/// agree with each other while writers carry on.
pub(crate) async fn read_snapshot(store: &Store) -> Result<DatabaseTransaction> {
    Ok(match store.backend() {
        Backend::Postgres => {
            let txn =
                store.db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await?;
            // The window functions sort every history row in scope; the
            // default 4 MB spills a million-row pipeline's sorts to disk.
            txn.execute_unprepared(REPORT_SETTINGS).await?;
            txn
        }
        Backend::Sqlite => store.db.begin().await?,
    })
}

/// Ratio with 0 for an empty denominator.
pub(crate) fn ratio(numerator: i64, denominator: i64) -> f64 {
    if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 }
}

impl Store {
    /// Computes the funnel report of [`ReportQuery`]; an unknown pipeline is
    /// NOT_FOUND.
    pub async fn funnel_report(&self, query: &ReportQuery) -> Result<FunnelFigures> {
        let txn = read_snapshot(self).await?;
        let pipeline = load_pipeline(&txn, query.pipeline.as_str()).await?.def;
        let mut stages: Vec<StageFigures> = pipeline
            .stages()
            .iter()
            .enumerate()
            .map(|(position, stage)| StageFigures {
                key: stage.key.to_string(),
                display_name: stage.display_name.clone(),
                position,
                rot_point: match (query.learned_rot_points.get(stage.key.as_str()), stage.rot_after_days) {
                    (_, Some(days)) => {
                        Some(RotPoint { after_micros: i64::from(days) * 86_400_000_000, source: RotSource::Configured })
                    }
                    (Some(micros), None) => Some(RotPoint { after_micros: *micros, source: RotSource::Learned }),
                    (None, None) => None,
                },
                ..StageFigures::default()
            })
            .collect();
        let index: BTreeMap<String, usize> = stages.iter().map(|stage| (stage.key.clone(), stage.position)).collect();

        for row in query_all(&txn, visits_sql(query, self.backend())).await? {
            let stage: String = row.try_get("", "stage")?;
            let Some(&position) = index.get(&stage) else { continue };
            let outcome: String = row.try_get("", "outcome")?;
            let figures = DurationFigures {
                count: row.try_get("", "visits")?,
                median_micros: row.try_get("", "median")?,
                p90_micros: row.try_get("", "p90")?,
            };
            let line = &mut stages[position];
            match outcome.as_str() {
                "advanced" => {
                    line.advanced = figures.count;
                    line.time_to_advance = figures;
                }
                "moved_back" => line.moved_back = figures.count,
                "leaked" => {
                    line.leaked = figures.count;
                    line.time_to_leak = figures;
                }
                _ => {}
            }
        }
        let mut furthest_counts = vec![0i64; stages.len()];
        let (mut won, mut leaked, mut open) = (0, 0, 0);
        for row in query_all(&txn, status_sql(query)).await? {
            let status: String = row.try_get("", "status")?;
            let furthest: Option<i32> = row.try_get("", "furthest")?;
            let count: i64 = row.try_get("", "opportunities")?;
            match status.as_str() {
                "won" => won += count,
                "leaked" => leaked += count,
                _ => open += count,
            }
            if let Some(slot) =
                furthest.and_then(|at| usize::try_from(at).ok()).and_then(|at| furthest_counts.get_mut(at))
            {
                *slot += count;
            }
        }
        for row in query_all(&txn, leak_reasons_sql(query)).await? {
            let stage: String = row.try_get("", "stage")?;
            let Some(&position) = index.get(&stage) else { continue };
            stages[position].leak_reasons.push((row.try_get("", "reason")?, row.try_get("", "leaks")?));
        }
        for row in query_all(&txn, open_sql(query, &stages)).await? {
            let stage: String = row.try_get("", "stage")?;
            let Some(&position) = index.get(&stage) else { continue };
            let currency_code: Option<String> = row.try_get("", "currency_code")?;
            let opportunities: i64 = row.try_get("", "opportunities")?;
            let amount: Option<i64> = row.try_get("", "amount")?;
            let weighted: Option<f64> = row.try_get("", "weighted")?;
            let stale: Option<i64> = row.try_get("", "stale")?;
            let line = &mut stages[position];
            line.still_open += opportunities;
            line.stale += stale.unwrap_or(0);
            line.open_amount.push(MoneyFigure {
                currency_code: currency_code.clone(),
                amount_minor: amount.unwrap_or(0),
                opportunities,
            });
            line.weighted_open_amount.push(MoneyFigure {
                currency_code,
                amount_minor: weighted.unwrap_or(0.0).round() as i64,
                opportunities,
            });
        }
        let median_time_to_win_micros = match query_all(&txn, time_to_win_sql(query, self.backend())).await?.first() {
            Some(row) => row.try_get("", "median")?,
            None => None,
        };
        txn.commit().await?;

        let mut reached_from_here = 0;
        for position in (0..stages.len()).rev() {
            reached_from_here += furthest_counts[position];
            stages[position].reached = reached_from_here;
        }
        let reached_first = stages.first().map_or(0, |stage| stage.reached);
        for position in 0..stages.len() {
            let reached_next = stages.get(position + 1).map_or(0, |next| next.reached);
            let line = &mut stages[position];
            line.entered = line.advanced + line.moved_back + line.leaked + line.still_open;
            line.conversion_to_next = ratio(reached_next, line.reached);
            line.cumulative_conversion = ratio(line.reached, reached_first);
            line.leak_rate = ratio(line.leaked, line.entered);
            line.leak_reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            line.leak_reasons.truncate(MAX_LEAK_REASONS);
        }
        // The won stage is entered by winning: its visits are the wins.
        if let Some(won_stage) = stages.last_mut() {
            won_stage.entered = won_stage.reached;
        }
        Ok(FunnelFigures {
            pipeline,
            opportunities: won + leaked + open,
            won,
            leaked,
            open,
            win_rate: ratio(won, won + leaked),
            median_time_to_win_micros,
            stages,
        })
    }
}

async fn query_all(txn: &DatabaseTransaction, sql: Sql) -> Result<Vec<QueryResult>> {
    Ok(txn.query_all_raw(sql.statement(txn.get_database_backend())).await?)
}

/// `WITH scope AS (...)`: the opportunities the report is about.
fn scope(sql: &mut Sql, query: &ReportQuery) {
    let pipeline = sql.bind(query.pipeline.as_str());
    let start = sql.bind(query.start.map_or(0, to_micros));
    let end = sql.bind(to_micros(query.end));
    sql.push(
        "WITH scope AS (SELECT o.id, o.stage, o.status, o.created_at, o.closed_at, o.stage_entered_at, \
         o.currency_code, o.amount_minor, o.furthest_stage FROM opportunities o WHERE o.pipeline = ",
    )
    .push(&pipeline);
    if let Some(owner) = &query.owner {
        let owner = sql.bind(owner.as_str());
        sql.push(" AND o.owner = ").push(&owner);
    }
    if let Some(source) = &query.source {
        let source = sql.bind(source.as_str());
        sql.push(" AND o.source = ").push(&source);
    }
    match query.mode {
        WindowMode::Cohort => {
            sql.push(&format!(" AND o.created_at >= {start} AND o.created_at < {end}"));
        }
        WindowMode::Activity => {
            sql.push(&format!(
                " AND EXISTS (SELECT 1 FROM transitions w WHERE w.opportunity_id = o.id \
                 AND w.occurred_at >= {start} AND w.occurred_at < {end})"
            ));
        }
    }
    sql.push(")");
}

/// Per stage and outcome of the visits that ended: how many, and the
/// nearest-rank median and 90th percentile of their duration. A history
/// row that leaves an open opportunity ends the visit its predecessor
/// began, `occurred_at - previous_at` after it (visits still going are the
/// open opportunities, counted by [`open_sql`]).
fn visits_sql(query: &ReportQuery, backend: Backend) -> Sql {
    let mut sql = Sql::new();
    scope(&mut sql, query);
    sql.push(&format!(
        ", visits AS (SELECT t.from_stage{collate} AS stage, \
           CASE WHEN t.kind IN ('advanced', 'won') THEN 'advanced' ELSE t.kind END{collate} AS outcome, \
           t.occurred_at - t.previous_at AS duration \
           FROM transitions t JOIN scope s ON s.id = t.opportunity_id WHERE t.from_status = 'open')",
        collate = byte_order(backend),
    ));
    sql.push(&percentiles(backend, "visits", "stage, outcome", "duration", "visits"));
    sql
}

/// Grouping text in byte order on PostgreSQL: the database's locale
/// collation made sorting two million visits by stage twice as slow.
fn byte_order(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " COLLATE \"C\"",
        Backend::Sqlite => "",
    }
}

/// `SELECT {groups}, COUNT(*) AS {count}, median, p90 FROM {from} GROUP BY
/// {groups}`: nearest-rank percentiles of `value`. PostgreSQL's
/// `percentile_disc` sorts each group's values alone; SQLite has none, so
/// there ranks come from window functions (three times slower on
/// PostgreSQL).
fn percentiles(backend: Backend, from: &str, groups: &str, value: &str, count: &str) -> String {
    let select_groups = if groups.is_empty() { String::new() } else { format!("{groups}, ") };
    let group_by = if groups.is_empty() { String::new() } else { format!(" GROUP BY {groups}") };
    match backend {
        Backend::Postgres => format!(
            " SELECT {select_groups}COUNT(*) AS {count}, \
               percentile_disc(0.5) WITHIN GROUP (ORDER BY {value}) AS median, \
               percentile_disc({P90_FRACTION}) WITHIN GROUP (ORDER BY {value}) AS p90 \
             FROM {from}{group_by}"
        ),
        Backend::Sqlite => {
            let partition = if groups.is_empty() { String::new() } else { format!("PARTITION BY {groups} ") };
            format!(
                ", ranked AS (SELECT {select_groups}{value} AS value, \
                   ROW_NUMBER() OVER ({partition}ORDER BY {value}) AS rank_in_group, \
                   COUNT(*) OVER ({partition}) AS group_size FROM {from}) \
                 SELECT {select_groups}COUNT(*) AS {count}, \
                   MAX(CASE WHEN rank_in_group = (group_size + 1) / 2 THEN value END) AS median, \
                   MAX(CASE WHEN rank_in_group = (9 * group_size + 9) / 10 THEN value END) AS p90 \
                 FROM ranked{group_by}"
            )
        }
    }
}

fn leak_reasons_sql(query: &ReportQuery) -> Sql {
    let mut sql = Sql::new();
    scope(&mut sql, query);
    sql.push(
        " SELECT t.to_stage AS stage, t.reason AS reason, COUNT(*) AS leaks FROM transitions t \
          JOIN scope s ON s.id = t.opportunity_id WHERE t.kind = 'leaked' GROUP BY t.to_stage, t.reason",
    );
    sql
}

/// Open opportunities per stage and currency: count, amount, amount
/// weighted by the current win estimate, and how many are stale.
fn open_sql(query: &ReportQuery, stages: &[StageFigures]) -> Sql {
    let mut sql = Sql::new();
    scope(&mut sql, query);
    let mut rot_rows = Vec::new();
    for stage in stages {
        if let Some(rot_point) = stage.rot_point {
            let key = sql.bind(stage.key.as_str());
            let after = sql.bind(rot_point.after_micros);
            rot_rows.push(format!("({key}, {after})"));
        }
    }
    let stale = if rot_rows.is_empty() {
        "CAST(0 AS BIGINT)".to_owned()
    } else {
        sql.push(&format!(", rot(stage, after_micros) AS (VALUES {})", rot_rows.join(", ")));
        let now = sql.bind(to_micros(query.now));
        format!(
            "SUM(CASE WHEN r.after_micros IS NOT NULL AND {now} - s.stage_entered_at > r.after_micros THEN 1 ELSE 0 END)"
        )
    };
    sql.push(&format!(
        " SELECT s.stage AS stage, s.currency_code AS currency_code, COUNT(*) AS opportunities, \
           CAST(SUM(s.amount_minor) AS BIGINT) AS amount, \
           CAST(SUM(s.amount_minor * cs.p_win) AS DOUBLE PRECISION) AS weighted, \
           CAST({stale} AS BIGINT) AS stale \
         FROM scope s LEFT JOIN current_scores cs ON cs.opportunity_id = s.id"
    ));
    if !rot_rows.is_empty() {
        sql.push(" LEFT JOIN rot r ON r.stage = s.stage");
    }
    sql.push(" WHERE s.status = 'open' GROUP BY s.stage, s.currency_code");
    sql
}

/// Opportunities by status and by the position of the furthest stage they
/// reached (NULL when none of their stages is in the pipeline any more).
fn status_sql(query: &ReportQuery) -> Sql {
    let mut sql = Sql::new();
    scope(&mut sql, query);
    let pipeline = sql.bind(query.pipeline.as_str());
    sql.push(&format!(
        " SELECT s.status AS status, st.position AS furthest, COUNT(*) AS opportunities FROM scope s \
          LEFT JOIN stages st ON st.pipeline = {pipeline} AND st.key = s.furthest_stage \
          GROUP BY s.status, st.position"
    ));
    sql
}

/// Nearest-rank median of creation to won, over the won ones.
fn time_to_win_sql(query: &ReportQuery, backend: Backend) -> Sql {
    let mut sql = Sql::new();
    scope(&mut sql, query);
    sql.push(", won AS (SELECT closed_at - created_at AS duration FROM scope WHERE status = 'won')");
    sql.push(&percentiles(backend, "won", "", "duration", "wins"));
    sql
}
