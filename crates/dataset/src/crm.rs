//! Maps the Maven Analytics "CRM Sales Opportunities" data set onto the
//! import format. Every pipeline row is either imported or reported as
//! skipped; whatever was imported imperfectly is reported too. The choices
//! (see also FORMAT.md):
//! - history: Prospecting -> Engaging (`engage_date`) -> Won or Lost
//!   (`close_date`); Lost is a leak from Engaging with reason `lost`.
//! - the data has no prospecting dates: a dated row is created in
//!   `prospecting` at its `engage_date` (zero time in that stage), and an
//!   undated Prospecting row at the snapshot date, the latest date in the
//!   file. Each undated row is reported with that choice.
//! - dates are midnight UTC.
//! - amount: Won rows use `close_value`; Lost rows (close_value is 0: nothing
//!   was sold) and open rows use the product's `sales_price`, the value at
//!   stake. USD, in cents.
//! - `source` is `unknown` (the data set has no lead source); `owner` and
//!   every history actor is the `sales_agent`.
//! - values stay as published (the `technolgy` typo included).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use crate::crm_rows::{ParsedRow, RowMapper};
use crate::crm_tables::{Products, Table, attribute_lookup};
use crate::error::Result;
use crate::record::{OpportunityRecord, PipelineSpec, StageSpec};

pub const CRM_PIPELINE: &str = "crm";
pub const PIPELINE_FILE: &str = "sales_pipeline.csv";
pub const ACCOUNTS_FILE: &str = "accounts.csv";
pub const PRODUCTS_FILE: &str = "products.csv";
pub const TEAMS_FILE: &str = "sales_teams.csv";

const PIPELINE_COLUMNS: [&str; 8] =
    ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date", "close_value"];
const ACCOUNT_ATTRIBUTES: [&str; 6] =
    ["sector", "revenue", "employees", "office_location", "year_established", "subsidiary_of"];
const TEAM_ATTRIBUTES: [&str; 2] = ["manager", "regional_office"];

/// What an import produced.
#[derive(Debug, Clone)]
pub struct CrmImport {
    pub pipeline: PipelineSpec,
    /// In file order.
    pub records: Vec<OpportunityRecord>,
    pub problems: Vec<RowProblem>,
    /// Latest date in sales_pipeline.csv; undated rows are created on it.
    pub snapshot_date: Option<NaiveDate>,
}

/// A row that was skipped or imported imperfectly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub file: String,
    /// 1-based line in `file` (the header is line 1).
    pub line: u64,
    /// The opportunity id, or the key of a reference-table row.
    pub external_id: String,
    pub reason: String,
    pub action: ProblemAction,
}

/// What the importer did about a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemAction {
    /// Imported anyway; `with` says how ("account attributes missing").
    Imported {
        with: String,
    },
    Skipped,
}

impl fmt::Display for ProblemAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemAction::Imported { with } => write!(formatter, "imported with {with}"),
            ProblemAction::Skipped => formatter.write_str("skipped"),
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} line {} ({}): {}; {}", self.file, self.line, self.external_id, self.reason, self.action)
    }
}

/// The CRM pipeline: prospecting, engaging, won. The rot thresholds follow
/// the data: won deals closed 1 to 138 days after engaging, median 45.
pub fn crm_pipeline() -> PipelineSpec {
    let stages = [("prospecting", "Prospecting", Some(30)), ("engaging", "Engaging", Some(90)), ("won", "Won", None)];
    PipelineSpec {
        name: CRM_PIPELINE.to_owned(),
        display_name: "CRM Sales Opportunities".to_owned(),
        stages: stages
            .into_iter()
            .map(|(key, display_name, rot_after_days)| StageSpec {
                key: key.to_owned(),
                display_name: display_name.to_owned(),
                rot_after_days,
            })
            .collect(),
    }
}

/// Loads the data set from `dir`. Fails only if a file is missing or lacks
/// a column; everything row-level ends up in [`CrmImport::problems`].
pub fn load_crm(dir: &Path) -> Result<CrmImport> {
    let mut problems = Vec::new();
    let accounts_table = Table::read(dir, ACCOUNTS_FILE, &["account"], &mut problems)?;
    let products_table = Table::read(dir, PRODUCTS_FILE, &["product", "series", "sales_price"], &mut problems)?;
    let teams_table = Table::read(dir, TEAMS_FILE, &["sales_agent"], &mut problems)?;
    let pipeline_table = Table::read(dir, PIPELINE_FILE, &PIPELINE_COLUMNS, &mut problems)?;

    let accounts = attribute_lookup(&accounts_table, "account", &ACCOUNT_ATTRIBUTES, &mut problems);
    let teams = attribute_lookup(&teams_table, "sales_agent", &TEAM_ATTRIBUTES, &mut problems);
    let products = Products::from_table(&products_table, &mut problems);

    // Dates first: the snapshot date is needed before any undated row maps.
    let mut parsed_rows = Vec::with_capacity(pipeline_table.rows.len());
    for (line, row) in &pipeline_table.rows {
        match ParsedRow::parse(&pipeline_table, *line, row) {
            Ok(parsed) => parsed_rows.push(parsed),
            Err(problem) => problems.push(problem),
        }
    }
    let snapshot_date = parsed_rows.iter().flat_map(ParsedRow::dates).max();

    let mut mapper = RowMapper {
        pipeline: crm_pipeline(),
        accounts: &accounts,
        teams: &teams,
        products: &products,
        snapshot_at: snapshot_date.map(midnight_utc),
        problems: &mut problems,
        grouped_problems: BTreeMap::new(),
    };
    let mut seen_ids = HashSet::new();
    let mut records = Vec::with_capacity(parsed_rows.len());
    for parsed in &parsed_rows {
        if !seen_ids.insert(parsed.id.clone()) {
            mapper.skip(parsed, "opportunity_id appears earlier in the file".to_owned());
            continue;
        }
        if let Some(record) = mapper.map(parsed) {
            records.push(record);
        }
    }
    mapper.report_grouped();
    Ok(CrmImport { pipeline: mapper.pipeline, records, problems, snapshot_date })
}

pub(crate) fn midnight_utc(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Attributes from a lookup, or none if the key is not there.
pub(crate) fn lookup_attributes<'a>(
    lookup: &'a HashMap<String, Vec<(String, String)>>,
    key: &str,
) -> Option<&'a [(String, String)]> {
    lookup.get(key).map(Vec::as_slice)
}
