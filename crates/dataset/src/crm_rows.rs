//! One sales_pipeline.csv row at a time: parse its fields, then map it to an
//! [`OpportunityRecord`] or a skip, reporting everything it had to bend.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::crm::{PIPELINE_FILE, ProblemAction, RowProblem, lookup_attributes, midnight_utc};
use crate::crm_tables::{ProductMatch, Products, Table, parse_dollars};
use crate::record::{HistoryEntry, OpportunityRecord, PipelineSpec, RecordStatus};

/// The data set's date format, e.g. `3/1/2017`.
const DATE_FORMAT: &str = "%m/%d/%Y";

/// A pipeline row whose id and dates were readable.
pub(crate) struct ParsedRow {
    pub line: u64,
    pub id: String,
    pub agent: String,
    pub product: String,
    pub account: String,
    pub deal_stage: String,
    pub engage_date: Option<NaiveDate>,
    pub close_date: Option<NaiveDate>,
    pub close_value: String,
}

fn parse_date(column: &str, text: &str) -> Result<Option<NaiveDate>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, DATE_FORMAT)
        .map(Some)
        .map_err(|error| format!("{column} {text:?} is not M/D/YYYY: {error}"))
}

impl ParsedRow {
    pub fn parse(table: &Table, line: u64, row: &csv::StringRecord) -> Result<ParsedRow, RowProblem> {
        let id = table.get(row, "opportunity_id").to_owned();
        let skip = |reason: String| RowProblem {
            file: PIPELINE_FILE.to_owned(),
            line,
            external_id: id.clone(),
            reason,
            action: ProblemAction::Skipped,
        };
        if id.is_empty() {
            return Err(skip("opportunity_id is empty".to_owned()));
        }
        let engage_date = parse_date("engage_date", table.get(row, "engage_date")).map_err(skip)?;
        let close_date = parse_date("close_date", table.get(row, "close_date")).map_err(skip)?;
        Ok(ParsedRow {
            line,
            agent: table.get(row, "sales_agent").to_owned(),
            product: table.get(row, "product").to_owned(),
            account: table.get(row, "account").to_owned(),
            deal_stage: table.get(row, "deal_stage").to_owned(),
            engage_date,
            close_date,
            close_value: table.get(row, "close_value").to_owned(),
            id,
        })
    }

    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        self.engage_date.into_iter().chain(self.close_date)
    }
}

/// A problem shared by many rows, reported once with its count.
pub(crate) struct GroupedProblem {
    first_line: u64,
    first_id: String,
    count: u64,
    reason: String,
    with: String,
}

pub(crate) struct RowMapper<'a> {
    pub pipeline: PipelineSpec,
    pub accounts: &'a HashMap<String, Vec<(String, String)>>,
    pub teams: &'a HashMap<String, Vec<(String, String)>>,
    pub products: &'a Products,
    pub snapshot_at: Option<DateTime<Utc>>,
    pub problems: &'a mut Vec<RowProblem>,
    /// Keyed by reason so the report order is stable.
    pub grouped_problems: BTreeMap<String, GroupedProblem>,
}

impl RowMapper<'_> {
    pub fn skip(&mut self, parsed: &ParsedRow, reason: String) {
        self.report(parsed, reason, ProblemAction::Skipped);
    }

    fn imported_with(&mut self, parsed: &ParsedRow, reason: String, with: &str) {
        let action = ProblemAction::Imported { with: with.to_owned() };
        self.report(parsed, reason, action);
    }

    fn report(&mut self, parsed: &ParsedRow, reason: String, action: ProblemAction) {
        self.problems.push(RowProblem {
            file: PIPELINE_FILE.to_owned(),
            line: parsed.line,
            external_id: parsed.id.clone(),
            reason,
            action,
        });
    }

    /// Systematic problems (one spelling, one missing column) are reported
    /// once per cause rather than once per row.
    fn group(&mut self, parsed: &ParsedRow, reason: String, with: String) {
        let grouped = self.grouped_problems.entry(reason.clone()).or_insert(GroupedProblem {
            first_line: parsed.line,
            first_id: parsed.id.clone(),
            count: 0,
            reason,
            with,
        });
        grouped.count += 1;
    }

    pub fn report_grouped(&mut self) {
        for grouped in std::mem::take(&mut self.grouped_problems).into_values() {
            self.problems.push(RowProblem {
                file: PIPELINE_FILE.to_owned(),
                line: grouped.first_line,
                external_id: grouped.first_id,
                reason: format!("{} ({} rows, first at this line)", grouped.reason, grouped.count),
                action: ProblemAction::Imported { with: grouped.with },
            });
        }
    }

    pub fn map(&mut self, parsed: &ParsedRow) -> Option<OpportunityRecord> {
        let history = self.history(parsed)?;
        let mut attributes = BTreeMap::new();
        let (product_name, list_price) = self.product_attributes(parsed, &mut attributes);
        let amount_minor = self.amount(parsed, &history, list_price);
        self.join(parsed, &mut attributes);
        let title = if parsed.account.is_empty() {
            format!("{product_name} (no account)")
        } else {
            format!("{product_name} for {}", parsed.account)
        };
        Some(OpportunityRecord {
            pipeline: self.pipeline.name.clone(),
            external_id: parsed.id.clone(),
            title,
            account: parsed.account.clone(),
            owner: parsed.agent.clone(),
            currency: "USD".to_owned(),
            amount_minor,
            source: "unknown".to_owned(),
            attributes,
            history,
            activities: Vec::new(),
        })
    }

    fn entry(parsed: &ParsedRow, stage: &str, status: RecordStatus, at: DateTime<Utc>, note: &str) -> HistoryEntry {
        let reason = if status == RecordStatus::Leaked { "lost" } else { "" };
        HistoryEntry {
            stage: stage.to_owned(),
            status,
            occurred_at: at,
            actor: parsed.agent.clone(),
            reason: reason.to_owned(),
            note: note.to_owned(),
        }
    }

    /// The stage history, or `None` after reporting why the row was skipped.
    fn history(&mut self, parsed: &ParsedRow) -> Option<Vec<HistoryEntry>> {
        use RecordStatus::{Leaked, Open, Won};
        let engaged = parsed.engage_date.map(midnight_utc);
        let closed = parsed.close_date.map(midnight_utc);
        let created_on_engage = "no prospecting date in the data; engage_date used";
        match (parsed.deal_stage.as_str(), engaged, closed) {
            ("Prospecting", _, _) => {
                let Some(snapshot_at) = self.snapshot_at else {
                    self.skip(parsed, "no date anywhere in the file to create it on".to_owned());
                    return None;
                };
                if engaged.is_some() || closed.is_some() {
                    let reason = "Prospecting row carries dates".to_owned();
                    self.imported_with(parsed, reason, "its dates ignored");
                }
                let reason = "Prospecting rows have no dates".to_owned();
                let with = format!("creation at the snapshot date {}", snapshot_at.date_naive());
                self.group(parsed, reason, with);
                let note = "no date in the data; snapshot date used";
                Some(vec![Self::entry(parsed, "prospecting", Open, snapshot_at, note)])
            }
            ("Engaging", Some(engaged_at), _) => {
                if closed.is_some() {
                    let reason = "Engaging row carries a close_date".to_owned();
                    self.imported_with(parsed, reason, "close_date ignored");
                }
                Some(vec![
                    Self::entry(parsed, "prospecting", Open, engaged_at, created_on_engage),
                    Self::entry(parsed, "engaging", Open, engaged_at, ""),
                ])
            }
            ("Won" | "Lost", Some(engaged_at), Some(closed_at)) if closed_at >= engaged_at => {
                let last = if parsed.deal_stage == "Won" {
                    Self::entry(parsed, "won", Won, closed_at, "")
                } else {
                    Self::entry(parsed, "engaging", Leaked, closed_at, "")
                };
                Some(vec![
                    Self::entry(parsed, "prospecting", Open, engaged_at, created_on_engage),
                    Self::entry(parsed, "engaging", Open, engaged_at, ""),
                    last,
                ])
            }
            ("Won" | "Lost", Some(_), Some(_)) => {
                self.skip(parsed, "close_date is before engage_date".to_owned());
                None
            }
            ("Engaging" | "Won" | "Lost", _, _) => {
                let reason = format!("{} row lacks engage_date or close_date", parsed.deal_stage);
                self.skip(parsed, reason);
                None
            }
            (other, _, _) => {
                let reason = format!("deal_stage {other:?} is not Prospecting, Engaging, Won or Lost");
                self.skip(parsed, reason);
                None
            }
        }
    }

    /// Adds product attributes; returns the display name and list price.
    fn product_attributes(
        &mut self,
        parsed: &ParsedRow,
        attributes: &mut BTreeMap<String, String>,
    ) -> (String, Option<i64>) {
        let product = match self.products.find(&parsed.product) {
            ProductMatch::Exact(product) => product,
            ProductMatch::Normalised(product) => {
                let reason = format!(
                    "product {:?} is not in products.csv; matched {:?} after ignoring spaces and case",
                    parsed.product, product.name
                );
                self.group(parsed, reason, format!("product {}", product.name));
                product
            }
            ProductMatch::Unknown => {
                let reason = format!("product {:?} is not in products.csv", parsed.product);
                self.imported_with(parsed, reason, "product attributes missing");
                if !parsed.product.is_empty() {
                    attributes.insert("product".to_owned(), parsed.product.clone());
                }
                return (parsed.product.clone(), None);
            }
        };
        attributes.insert("product".to_owned(), product.name.clone());
        for (name, value) in [("series", &product.series), ("sales_price", &product.sales_price)] {
            if !value.is_empty() {
                attributes.insert(name.to_owned(), value.clone());
            }
        }
        (product.name.clone(), product.price_minor)
    }

    /// Won: the close value; otherwise the list price (see the module docs).
    fn amount(&mut self, parsed: &ParsedRow, history: &[HistoryEntry], list_price: Option<i64>) -> i64 {
        let is_won = history.last().is_some_and(|entry| entry.status == RecordStatus::Won);
        if is_won {
            if let Some(close_value) = parse_dollars(&parsed.close_value) {
                return close_value;
            }
            let reason = format!("close_value {:?} is not a number", parsed.close_value);
            let with = if list_price.is_some() { "the list price as amount" } else { "amount 0" };
            self.imported_with(parsed, reason, with);
            return list_price.unwrap_or(0);
        }
        if list_price.is_none() {
            let reason = format!("no sales_price for product {:?}", parsed.product);
            self.imported_with(parsed, reason, "amount 0");
        }
        list_price.unwrap_or(0)
    }

    /// Joins account and sales-team attributes, reporting what is missing.
    fn join(&mut self, parsed: &ParsedRow, attributes: &mut BTreeMap<String, String>) {
        let account_attributes = lookup_attributes(self.accounts, &parsed.account);
        match account_attributes {
            Some(found) => attributes.extend(found.iter().cloned()),
            None if parsed.account.is_empty() => {
                self.imported_with(parsed, "account is empty".to_owned(), "account attributes missing");
            }
            None => {
                let reason = format!("account {:?} is not in accounts.csv", parsed.account);
                self.imported_with(parsed, reason, "account attributes missing");
            }
        }
        if let Some(found) = lookup_attributes(self.teams, &parsed.agent) {
            attributes.extend(found.iter().cloned());
            return;
        }
        let reason = format!("sales_agent {:?} is not in sales_teams.csv", parsed.agent);
        self.imported_with(parsed, reason, "team attributes missing");
    }
}
