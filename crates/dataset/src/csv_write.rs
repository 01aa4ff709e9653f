//! The CSV variant of the import format, writing side: three files joined
//! on `external_id` (see FORMAT.md). Rows of history.csv and activities.csv
//! come grouped per opportunity in the order of opportunities.csv, which is
//! what lets [`crate::CsvReader`] stream all three side by side.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::record::OpportunityRecord;

pub const OPPORTUNITIES_FILE: &str = "opportunities.csv";
pub const HISTORY_FILE: &str = "history.csv";
pub const ACTIVITIES_FILE: &str = "activities.csv";
/// Prefix of the `opportunities.csv` columns that hold attributes.
pub const ATTRIBUTE_PREFIX: &str = "attr.";

pub(crate) const OPPORTUNITY_COLUMNS: [&str; 8] =
    ["external_id", "pipeline", "title", "account", "owner", "currency", "amount_minor", "source"];
pub(crate) const HISTORY_COLUMNS: [&str; 7] =
    ["external_id", "stage", "status", "occurred_at", "actor", "reason", "note"];
pub(crate) const ACTIVITY_COLUMNS: [&str; 5] = ["external_id", "kind", "occurred_at", "actor", "note"];

/// Writes records as the three CSV files. The attribute columns are fixed up
/// front (a CSV header cannot grow), so a record with any other attribute is
/// an [`Error::UnknownAttribute`].
pub struct CsvWriter<W: Write> {
    opportunities: csv::Writer<W>,
    history: csv::Writer<W>,
    activities: csv::Writer<W>,
    attribute_names: Vec<String>,
}

/// Creates the three files in `dir` (which must exist) and writes headers.
pub fn create_csv_dir(dir: &Path, attribute_names: Vec<String>) -> Result<CsvWriter<BufWriter<File>>> {
    let create = |name: &str| {
        let path = dir.join(name);
        File::create(&path).map(BufWriter::new).map_err(|source| Error::Io { path, source })
    };
    CsvWriter::new(create(OPPORTUNITIES_FILE)?, create(HISTORY_FILE)?, create(ACTIVITIES_FILE)?, attribute_names)
}

fn write_error(error: impl std::fmt::Display) -> Error {
    Error::Write { what: "csv row", reason: error.to_string() }
}

fn timestamp_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl<W: Write> CsvWriter<W> {
    pub fn new(opportunities: W, history: W, activities: W, attribute_names: Vec<String>) -> Result<Self> {
        let mut writer = CsvWriter {
            opportunities: csv::Writer::from_writer(opportunities),
            history: csv::Writer::from_writer(history),
            activities: csv::Writer::from_writer(activities),
            attribute_names,
        };
        let mut opportunity_header: Vec<String> = OPPORTUNITY_COLUMNS.map(str::to_owned).to_vec();
        for name in &writer.attribute_names {
            opportunity_header.push(format!("{ATTRIBUTE_PREFIX}{name}"));
        }
        writer.opportunities.write_record(&opportunity_header).map_err(write_error)?;
        writer.history.write_record(HISTORY_COLUMNS).map_err(write_error)?;
        writer.activities.write_record(ACTIVITY_COLUMNS).map_err(write_error)?;
        Ok(writer)
    }

    /// Writes one opportunity row plus its history and activity rows.
    pub fn write(&mut self, record: &OpportunityRecord) -> Result<()> {
        let id = record.external_id.as_str();
        if let Some(unknown) = record.attributes.keys().find(|name| !self.attribute_names.contains(name)) {
            return Err(Error::UnknownAttribute { external_id: id.to_owned(), attribute: unknown.clone() });
        }
        let amount = record.amount_minor.to_string();
        let mut opportunity_row: Vec<&str> = vec![
            id,
            &record.pipeline,
            &record.title,
            &record.account,
            &record.owner,
            &record.currency,
            &amount,
            &record.source,
        ];
        for name in &self.attribute_names {
            opportunity_row.push(record.attributes.get(name).map_or("", String::as_str));
        }
        self.opportunities.write_record(&opportunity_row).map_err(write_error)?;
        for entry in &record.history {
            let status = entry.status.to_string();
            let at = timestamp_text(&entry.occurred_at);
            let history_row = [id, &entry.stage, &status, &at, &entry.actor, &entry.reason, &entry.note];
            self.history.write_record(history_row).map_err(write_error)?;
        }
        for activity in &record.activities {
            let kind = activity.kind.to_string();
            let at = timestamp_text(&activity.occurred_at);
            let activity_row = [id, &kind, &at, &activity.actor, &activity.note];
            self.activities.write_record(activity_row).map_err(write_error)?;
        }
        Ok(())
    }

    /// Writes every record; returns how many were written.
    pub fn write_all<I>(&mut self, records: I) -> Result<u64>
    where
        I: IntoIterator,
        I::Item: Borrow<OpportunityRecord>,
    {
        let mut written = 0;
        for record in records {
            self.write(record.borrow())?;
            written += 1;
        }
        Ok(written)
    }

    /// Flushes and hands back the three writers (opportunities, history,
    /// activities).
    pub fn finish(self) -> Result<(W, W, W)> {
        let opportunities = self.opportunities.into_inner().map_err(write_error)?;
        let history = self.history.into_inner().map_err(write_error)?;
        let activities = self.activities.into_inner().map_err(write_error)?;
        Ok((opportunities, history, activities))
    }
}
