//! Printing: aligned tables for people, JSON for scripts, progress bars on
//! stderr. Every command returns a [`Report`]; [`emit`] picks the form.

use std::time::Duration;

use chrono::{DateTime, Utc};
use comfy_table::{CellAlignment, ContentArrangement, Table, TableComponent, presets};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// How reports are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned tables and sentences.
    Human,
    /// One pretty-printed JSON document on stdout.
    Json,
}

/// What a command produced: serializable for `--json`, and readable.
pub trait Report: Serialize {
    /// The report as text for a person, without a trailing newline.
    fn human(&self) -> String;
}

/// The report as the format asks, as one string.
pub fn render<R: Report>(report: &R, format: Format) -> String {
    match format {
        Format::Human => report.human(),
        // Serializing plain views cannot fail; the fallback keeps output JSON.
        Format::Json => serde_json::to_string_pretty(report)
            .unwrap_or_else(|error| serde_json::json!({ "error": { "message": error.to_string() } }).to_string()),
    }
}

/// Prints the report on stdout. A closed pipe (`funnel leads | head`) is
/// the reader's choice, not an error worth a panic.
pub fn emit<R: Report>(report: &R, format: Format) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{}", render(report, format));
}

/// A table with a header row; `right_aligned` are the numeric columns.
pub fn table(header: &[&str], right_aligned: &[usize]) -> Table {
    let mut table = Table::new();
    // No borders, one rule under the header: easy to read and to grep.
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_style(TableComponent::HeaderLines, '─').set_style(TableComponent::MiddleHeaderIntersections, ' ');
    table.set_header(header.iter().copied());
    for index in right_aligned {
        if let Some(column) = table.column_mut(*index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Two columns, name and value, for the details of one thing.
pub fn details_table(rows: &[(&str, String)]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
    for (name, value) in rows {
        table.add_row([format!("{name}:"), value.clone()]);
    }
    table
}

pub fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string())
}

/// A probability as a percentage with one decimal, `-` for NaN.
pub fn percent(probability: f64) -> String {
    if probability.is_nan() { "-".to_owned() } else { format!("{:.1}%", probability * 100.0) }
}

/// A metric with three decimals, `-` for NaN.
pub fn decimal(value: f64) -> String {
    if value.is_nan() { "-".to_owned() } else { format!("{value:.3}") }
}

/// Minor units as a decimal amount with its currency: `1,855.00 USD`.
pub fn money(amount_minor: i64, currency_code: &str) -> String {
    let whole = amount_minor / 100;
    let cents = (amount_minor % 100).abs();
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount_minor < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{cents:02} {currency_code}")
}

/// `"... and 12 more"` when a list was cut for display.
pub fn more_line(shown: usize, total: usize, what: &str) -> Option<String> {
    (total > shown).then(|| format!("... and {} more {what} (use --json for all)", total - shown))
}

/// A bar counting `total` items.
pub fn counting_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template =
        format!("{{elapsed_precise}} [{{bar:30}}] {{human_pos}}/{{human_len}} {what} ({{per_sec}}, eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A bar counting bytes of a file, with the record count as message.
pub fn bytes_bar(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    let template = "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A spinner counting items when the total is unknown.
pub fn counting_spinner(what: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    let template = format!("{{spinner}} {{elapsed_precise}} {{human_pos}} {what} ({{per_sec}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        spinner.set_style(style);
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// A spinner for work of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        spinner.set_style(style);
    }
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money(185_500, "USD"), "1,855.00 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(123_456_789, "USD"), "1,234,567.89 USD");
    }

    #[test]
    fn nan_metrics_print_as_a_dash() {
        assert_eq!(percent(f64::NAN), "-");
        assert_eq!(decimal(0.12345), "0.123");
    }
}
