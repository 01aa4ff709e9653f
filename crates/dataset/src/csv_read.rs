//! The CSV variant of the import format, reading side. The reader streams
//! all three files side by side, which is why history and activity rows must
//! come grouped and in the order of `opportunities.csv`, exactly as
//! [`crate::CsvWriter`] writes them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::csv_write::{
    ACTIVITIES_FILE, ACTIVITY_COLUMNS, ATTRIBUTE_PREFIX, HISTORY_COLUMNS, HISTORY_FILE, OPPORTUNITIES_FILE,
    OPPORTUNITY_COLUMNS,
};
use crate::error::{Error, Result};
use crate::jsonl::RowError;
use crate::record::{ActivityEntry, HistoryEntry, OpportunityRecord};

/// Column positions of one file, resolved from its header so column order is
/// free.
struct Columns {
    file: &'static str,
    positions: Vec<usize>,
}

impl Columns {
    fn resolve(file: &'static str, header: &csv::StringRecord, names: &[&str]) -> Result<Self> {
        let mut positions = Vec::with_capacity(names.len());
        for name in names {
            let Some(position) = header.iter().position(|column| column == *name) else {
                let reason = format!("missing column {name}");
                return Err(Error::CsvFile { file: file.to_owned(), reason });
            };
            positions.push(position);
        }
        Ok(Columns { file, positions })
    }

    fn get<'a>(&self, row: &'a csv::StringRecord, index: usize) -> &'a str {
        row.get(self.positions[index]).unwrap_or("")
    }
}

/// A row of history.csv or activities.csv waiting to be matched.
struct PendingRow {
    line: u64,
    row: csv::StringRecord,
}

/// One side file streamed alongside opportunities.csv.
struct SideFile<R> {
    rows: csv::StringRecordsIntoIter<R>,
    columns: Columns,
    pending: Option<std::result::Result<PendingRow, String>>,
}

impl<R: Read> SideFile<R> {
    fn open(file: &'static str, reader: R, names: &[&str]) -> Result<Self> {
        let mut csv_reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = csv_reader
            .headers()
            .map_err(|error| Error::CsvFile { file: file.to_owned(), reason: error.to_string() })?;
        let columns = Columns::resolve(file, header, names)?;
        let mut side = SideFile { rows: csv_reader.into_records(), columns, pending: None };
        side.advance();
        Ok(side)
    }

    fn advance(&mut self) {
        self.pending = self.rows.next().map(|next_row| match next_row {
            Ok(row) => {
                let line = row.position().map_or(0, csv::Position::line);
                Ok(PendingRow { line, row })
            }
            Err(error) => Err(format!("{}: {error}", self.columns.file)),
        });
    }

    /// Takes the rows of `external_id`, which must be next in the file; an
    /// unreadable row is returned as an error after its group is consumed.
    fn take_group(&mut self, external_id: &str) -> (Vec<PendingRow>, Vec<String>) {
        let mut group = Vec::new();
        let mut problems = Vec::new();
        loop {
            match &self.pending {
                Some(Ok(pending)) if self.columns.get(&pending.row, 0) == external_id => {}
                Some(Err(reason)) => problems.push(reason.clone()),
                _ => break,
            }
            if let Some(Ok(pending)) = self.pending.take() {
                group.push(pending);
            }
            self.advance();
        }
        (group, problems)
    }
}

/// Streams records from the three CSV files; see the module docs for the
/// ordering rule. Items and errors carry the `opportunities.csv` line, except
/// errors for side rows matching no opportunity, which carry their own line
/// and name their file in the reason.
pub struct CsvReader<R> {
    opportunities: csv::StringRecordsIntoIter<R>,
    columns: Columns,
    attribute_columns: Vec<(String, usize)>,
    history: SideFile<R>,
    activities: SideFile<R>,
}

/// Opens the three files in `dir`.
pub fn open_csv_dir(dir: &Path) -> Result<CsvReader<File>> {
    let open = |name: &str| {
        let path = dir.join(name);
        File::open(&path).map_err(|source| Error::Io { path, source })
    };
    read_csv(open(OPPORTUNITIES_FILE)?, open(HISTORY_FILE)?, open(ACTIVITIES_FILE)?)
}

/// Checks the three headers and starts streaming.
pub fn read_csv<R: Read>(opportunities: R, history: R, activities: R) -> Result<CsvReader<R>> {
    let mut opportunity_reader = csv::ReaderBuilder::new().flexible(true).from_reader(opportunities);
    let header = opportunity_reader
        .headers()
        .map_err(|error| Error::CsvFile { file: OPPORTUNITIES_FILE.to_owned(), reason: error.to_string() })?;
    let columns = Columns::resolve(OPPORTUNITIES_FILE, header, &OPPORTUNITY_COLUMNS)?;
    let mut attribute_columns = Vec::new();
    for (position, column) in header.iter().enumerate() {
        if let Some(name) = column.strip_prefix(ATTRIBUTE_PREFIX) {
            attribute_columns.push((name.to_owned(), position));
        }
    }
    Ok(CsvReader {
        opportunities: opportunity_reader.into_records(),
        columns,
        attribute_columns,
        history: SideFile::open(HISTORY_FILE, history, &HISTORY_COLUMNS)?,
        activities: SideFile::open(ACTIVITIES_FILE, activities, &ACTIVITY_COLUMNS)?,
    })
}

impl<R: Read> CsvReader<R> {
    fn build(&mut self, row: &csv::StringRecord) -> std::result::Result<OpportunityRecord, String> {
        let field = |index: usize| self.columns.get(row, index).to_owned();
        let external_id = field(0);
        let (history_rows, mut problems) = self.history.take_group(&external_id);
        let (activity_rows, activity_problems) = self.activities.take_group(&external_id);
        problems.extend(activity_problems);
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        if history_rows.is_empty() {
            return Err(format!(
                "no {HISTORY_FILE} rows for {external_id} (side files must follow the order of {OPPORTUNITIES_FILE})"
            ));
        }
        let amount_text = field(6);
        let amount_minor =
            amount_text.parse::<i64>().map_err(|_| format!("amount_minor {amount_text:?} is not an integer"))?;
        let mut attributes = BTreeMap::new();
        for (name, position) in &self.attribute_columns {
            let value = row.get(*position).unwrap_or("");
            if !value.is_empty() {
                attributes.insert(name.clone(), value.to_owned());
            }
        }
        let mut history = Vec::with_capacity(history_rows.len());
        for pending in &history_rows {
            history.push(self.parse_history(pending)?);
        }
        let mut activities = Vec::with_capacity(activity_rows.len());
        for pending in &activity_rows {
            activities.push(self.parse_activity(pending)?);
        }
        Ok(OpportunityRecord {
            pipeline: field(1),
            external_id,
            title: field(2),
            account: field(3),
            owner: field(4),
            currency: field(5),
            amount_minor,
            source: field(7),
            attributes,
            history,
            activities,
        })
    }

    fn parse_history(&self, pending: &PendingRow) -> std::result::Result<HistoryEntry, String> {
        let columns = &self.history.columns;
        let get = |index: usize| columns.get(&pending.row, index).to_owned();
        let located = |reason: String| format!("{HISTORY_FILE} line {}: {reason}", pending.line);
        Ok(HistoryEntry {
            stage: get(1),
            status: get(2).parse().map_err(located)?,
            occurred_at: parse_time(&get(3)).map_err(located)?,
            actor: get(4),
            reason: get(5),
            note: get(6),
        })
    }

    fn parse_activity(&self, pending: &PendingRow) -> std::result::Result<ActivityEntry, String> {
        let columns = &self.activities.columns;
        let get = |index: usize| columns.get(&pending.row, index).to_owned();
        let located = |reason: String| format!("{ACTIVITIES_FILE} line {}: {reason}", pending.line);
        Ok(ActivityEntry {
            kind: get(1).parse().map_err(located)?,
            occurred_at: parse_time(&get(2)).map_err(located)?,
            actor: get(3),
            note: get(4),
        })
    }

    /// After opportunities.csv ends: one error per side row left unmatched.
    fn next_orphan(&mut self) -> Option<RowError> {
        for side in [&mut self.history, &mut self.activities] {
            let Some(pending) = side.pending.take() else {
                continue;
            };
            side.advance();
            let file = side.columns.file;
            return Some(match pending {
                Ok(orphan) => RowError {
                    line: orphan.line,
                    reason: format!(
                        "{file}: row for {} matches no opportunity in order",
                        side.columns.get(&orphan.row, 0)
                    ),
                },
                Err(reason) => RowError { line: 0, reason },
            });
        }
        None
    }
}

fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    text.parse::<DateTime<Utc>>().map_err(|error| format!("occurred_at {text:?} is not RFC 3339: {error}"))
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = std::result::Result<(u64, OpportunityRecord), RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(row) = self.opportunities.next() else {
            return self.next_orphan().map(Err);
        };
        let opportunity_row = match row {
            Ok(readable) => readable,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                let reason = format!("{OPPORTUNITIES_FILE}: {error}");
                return Some(Err(RowError { line, reason }));
            }
        };
        let line = opportunity_row.position().map_or(0, csv::Position::line);
        let built = self.build(&opportunity_row);
        Some(built.map(|record| (line, record)).map_err(|reason| RowError { line, reason }))
    }
}
