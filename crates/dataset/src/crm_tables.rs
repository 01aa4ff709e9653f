//! The reference tables of the CRM Sales Opportunities data set (accounts,
//! products, sales teams), read into lookups. Unusable rows become
//! [`RowProblem`]s, never errors: one bad account must not stop an import.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use crate::crm::{ProblemAction, RowProblem};
use crate::error::{Error, Result};

/// A CSV file read whole (the reference tables are tiny) with its columns
/// looked up by name.
pub(crate) struct Table {
    pub file: &'static str,
    pub rows: Vec<(u64, csv::StringRecord)>,
    positions: HashMap<String, usize>,
}

impl Table {
    /// Reads `dir/file`, requiring `columns` in its header. Rows the csv
    /// crate cannot read are reported as skipped.
    pub fn read(dir: &Path, file: &'static str, columns: &[&str], problems: &mut Vec<RowProblem>) -> Result<Table> {
        let path = dir.join(file);
        let handle = File::open(&path).map_err(|source| Error::Io { path, source })?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(handle);
        let header =
            reader.headers().map_err(|error| Error::CsvFile { file: file.to_owned(), reason: error.to_string() })?;
        let positions: HashMap<String, usize> =
            header.iter().enumerate().map(|(position, name)| (name.trim().to_owned(), position)).collect();
        if let Some(missing) = columns.iter().find(|name| !positions.contains_key(**name)) {
            let reason = format!("missing column {missing}");
            return Err(Error::CsvFile { file: file.to_owned(), reason });
        }
        let mut rows = Vec::new();
        for row in reader.into_records() {
            match row {
                Ok(readable) => {
                    let line = readable.position().map_or(0, csv::Position::line);
                    rows.push((line, readable));
                }
                Err(error) => problems.push(RowProblem {
                    file: file.to_owned(),
                    line: error.position().map_or(0, csv::Position::line),
                    external_id: String::new(),
                    reason: error.to_string(),
                    action: ProblemAction::Skipped,
                }),
            }
        }
        Ok(Table { file, rows, positions })
    }

    /// The trimmed value of `column` (empty when the row is short).
    pub fn get<'a>(&self, row: &'a csv::StringRecord, column: &str) -> &'a str {
        self.positions.get(column).and_then(|position| row.get(*position)).map_or("", str::trim)
    }
}

/// One product of products.csv.
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub name: String,
    pub series: String,
    pub sales_price: String,
    /// `sales_price` in cents, if it parses.
    pub price_minor: Option<i64>,
}

/// How a pipeline row's product name was resolved.
pub(crate) enum ProductMatch<'a> {
    Exact(&'a Product),
    /// Found only after normalising (spaces and case): worth a report.
    Normalised(&'a Product),
    Unknown,
}

/// Products by exact name and by normalised name.
pub(crate) struct Products {
    by_name: HashMap<String, Product>,
    by_normalised_name: HashMap<String, String>,
}

/// `GTX Pro` and `GTXPro` both become `gtxpro`.
pub(crate) fn normalise_name(name: &str) -> String {
    name.chars().filter(|character| !character.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Parses a money amount in whole or decimal dollars into cents.
pub(crate) fn parse_dollars(text: &str) -> Option<i64> {
    let dollars: f64 = text.trim().parse().ok()?;
    // The bound keeps the cents inside i64 (and rejects NaN and infinities).
    if !(0.0..=1e15).contains(&dollars) {
        return None;
    }
    Some((dollars * 100.0).round() as i64)
}

impl Products {
    pub fn from_table(table: &Table, problems: &mut Vec<RowProblem>) -> Products {
        let mut products = Products { by_name: HashMap::new(), by_normalised_name: HashMap::new() };
        for (line, row) in &table.rows {
            let name = table.get(row, "product");
            let mut report = |reason: String, action: ProblemAction| {
                let file = table.file.to_owned();
                problems.push(RowProblem { file, line: *line, external_id: name.to_owned(), reason, action });
            };
            if name.is_empty() || products.by_name.contains_key(name) {
                report(format!("product {name:?} is empty or repeated"), ProblemAction::Skipped);
                continue;
            }
            let sales_price = table.get(row, "sales_price");
            let price_minor = parse_dollars(sales_price);
            if price_minor.is_none() {
                let with = "no list price".to_owned();
                report(format!("sales_price {sales_price:?} is not a number"), ProblemAction::Imported { with });
            }
            let product = Product {
                name: name.to_owned(),
                series: table.get(row, "series").to_owned(),
                sales_price: sales_price.to_owned(),
                price_minor,
            };
            products.by_normalised_name.insert(normalise_name(name), name.to_owned());
            products.by_name.insert(name.to_owned(), product);
        }
        products
    }

    pub fn find(&self, name: &str) -> ProductMatch<'_> {
        if let Some(product) = self.by_name.get(name) {
            return ProductMatch::Exact(product);
        }
        let canonical = self.by_normalised_name.get(&normalise_name(name));
        match canonical.and_then(|canonical_name| self.by_name.get(canonical_name)) {
            Some(product) => ProductMatch::Normalised(product),
            None => ProductMatch::Unknown,
        }
    }
}

/// Rows of a keyed table as attribute lists: `key -> [(attribute, value)]`,
/// empty values left out (absent means unknown). Repeated keys keep the first
/// row and report the others.
pub(crate) fn attribute_lookup(
    table: &Table,
    key_column: &str,
    attribute_columns: &[&str],
    problems: &mut Vec<RowProblem>,
) -> HashMap<String, Vec<(String, String)>> {
    let mut lookup: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (line, row) in &table.rows {
        let key = table.get(row, key_column);
        if key.is_empty() || lookup.contains_key(key) {
            problems.push(RowProblem {
                file: table.file.to_owned(),
                line: *line,
                external_id: key.to_owned(),
                reason: format!("{key_column} {key:?} is empty or repeated"),
                action: ProblemAction::Skipped,
            });
            continue;
        }
        let mut attributes = Vec::new();
        for column in attribute_columns {
            let value = table.get(row, column);
            if !value.is_empty() {
                attributes.push(((*column).to_owned(), value.to_owned()));
            }
        }
        lookup.insert(key.to_owned(), attributes);
    }
    lookup
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_match_after_removing_spaces_and_case() {
        assert_eq!(normalise_name("GTX Pro"), normalise_name("GTXPro"));
        assert_eq!(normalise_name(" gtx  PRO "), "gtxpro");
        assert_ne!(normalise_name("GTX Plus Pro"), normalise_name("GTX Pro"));
    }

    #[test]
    fn dollars_become_cents() {
        assert_eq!(parse_dollars("4821"), Some(482_100));
        assert_eq!(parse_dollars("1100.04"), Some(110_004));
        assert_eq!(parse_dollars("n/a"), None);
        assert_eq!(parse_dollars("-5"), None);
    }
}
