//! Pairs of measurements, their median ratio, and the markdown table.

use std::fmt::Write as _;

/// Which way the ratio funnel / anchor has to go.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// funnel / anchor at least this (throughputs).
    AtLeast(f64),
    /// funnel / anchor at most this (times, latencies).
    AtMost(f64),
}

impl Goal {
    fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(bound) => ratio >= bound,
            Goal::AtMost(bound) => ratio <= bound,
        }
    }

    fn describe(self) -> String {
        match self {
            Goal::AtLeast(bound) => format!(">= {bound}"),
            Goal::AtMost(bound) => format!("<= {bound}x"),
        }
    }
}

/// One benchmark: the funnel and anchor figure of every pair, measured back
/// to back (A B A B ...).
#[derive(Debug, Clone)]
pub struct Comparison {
    pub id: String,
    pub funnel: String,
    pub anchor: String,
    pub unit: String,
    pub goal: Goal,
    pub funnel_figures: Vec<f64>,
    pub anchor_figures: Vec<f64>,
    pub notes: String,
}

impl Comparison {
    pub fn new(id: &str, funnel: &str, anchor: &str, unit: &str, goal: Goal) -> Self {
        Self {
            id: id.to_owned(),
            funnel: funnel.to_owned(),
            anchor: anchor.to_owned(),
            unit: unit.to_owned(),
            goal,
            funnel_figures: Vec::new(),
            anchor_figures: Vec::new(),
            notes: String::new(),
        }
    }

    pub fn push(&mut self, funnel_figure: f64, anchor_figure: f64) {
        println!(
            "  {} pair {}: funnel {funnel_figure:.3} {unit}, anchor {anchor_figure:.3} {unit}, ratio {:.3}",
            self.id,
            self.funnel_figures.len() + 1,
            funnel_figure / anchor_figure,
            unit = self.unit
        );
        self.funnel_figures.push(funnel_figure);
        self.anchor_figures.push(anchor_figure);
    }

    /// Median of the per-pair ratios: a pair shares the machine's mood.
    pub fn median_ratio(&self) -> f64 {
        let ratios: Vec<f64> =
            self.funnel_figures.iter().zip(&self.anchor_figures).map(|(funnel, anchor)| funnel / anchor).collect();
        median(&ratios)
    }
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 }
}

fn figures(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|value| format_figure(*value)).collect();
    parts.join(", ")
}

fn format_figure(value: f64) -> String {
    if value.abs() >= 100.0 { format!("{value:.0}") } else { format!("{value:.3}") }
}

/// Everything a results file holds.
#[derive(Debug, Default)]
pub struct Results {
    pub context: Vec<(String, String)>,
    pub comparisons: Vec<Comparison>,
    pub other: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
}

impl Results {
    pub fn markdown(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "| | |\n| --- | --- |");
        for (key, value) in &self.context {
            let _ = writeln!(text, "| {key} | {value} |");
        }
        let _ = writeln!(
            text,
            "\n| id | funnel | anchor | unit | funnel median | anchor median | median ratio | goal | met | funnel raw | anchor raw | notes |"
        );
        let _ = writeln!(text, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        let mut comparisons: Vec<&Comparison> = self.comparisons.iter().collect();
        comparisons.sort_by(|a, b| a.id.cmp(&b.id));
        for comparison in comparisons {
            let ratio = comparison.median_ratio();
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {ratio:.3} | {} | {} | {} | {} | {} |",
                comparison.id,
                comparison.funnel,
                comparison.anchor,
                comparison.unit,
                format_figure(median(&comparison.funnel_figures)),
                format_figure(median(&comparison.anchor_figures)),
                comparison.goal.describe(),
                if comparison.goal.met(ratio) { "yes" } else { "**no**" },
                figures(&comparison.funnel_figures),
                figures(&comparison.anchor_figures),
                comparison.notes,
            );
        }
        if !self.other.is_empty() {
            let _ = writeln!(text, "\n| also measured | |\n| --- | --- |");
            for (key, value) in &self.other {
                let _ = writeln!(text, "| {key} | {value} |");
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(text, "\n| not run | why |\n| --- | --- |");
            for (key, value) in &self.skipped {
                let _ = writeln!(text, "| {key} | {value} |");
            }
        }
        text
    }
}
