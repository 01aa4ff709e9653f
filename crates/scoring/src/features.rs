//! The feature spec: how a [`FeatureRow`] becomes a numeric vector. Fitted on
//! training rows and stored with the model, so scoring encodes exactly as
//! training did.

use std::collections::{BTreeMap, BTreeSet};

use ndarray::{Array2, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::examples::FeatureRow;
use crate::fit::fits_column_major;

/// Value used when a categorical feature is absent from a row.
const MISSING_CATEGORY: &str = "(missing)";
/// Standardized values are clipped to this magnitude so one wild input
/// (a typo'd amount) cannot dominate a score.
const CLIP: f64 = 10.0;

/// Settings for fitting a [`FeatureSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncodingParams {
    /// A category gets its own column when seen at least this often.
    pub min_category_count: usize,
    /// At most this many one-hot columns per feature, besides "other".
    pub max_categories: usize,
    /// An attribute is numeric when at least this share of its present
    /// values parse as finite numbers.
    pub numeric_attribute_share: f64,
}

/// A categorical feature: one column per kept value plus `(other)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalFeature {
    pub key: String,
    pub from_attribute: bool,
    pub values: Vec<String>,
}

/// A standardized numeric feature, with a missing-flag column when the
/// training data had missing values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericFeature {
    pub key: String,
    pub from_attribute: bool,
    pub mean: f64,
    pub std: f64,
    pub missing_column: bool,
}

/// The fitted transform from rows to columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub categorical: Vec<CategoricalFeature>,
    pub numeric: Vec<NumericFeature>,
}

fn feature_name(key: &str, from_attribute: bool) -> String {
    if from_attribute { format!("attr.{key}") } else { key.to_owned() }
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|value| value.is_finite())
}

impl CategoricalFeature {
    fn raw<'a>(&self, row: &'a FeatureRow) -> &'a str {
        let map = if self.from_attribute { &row.attributes } else { &row.categorical };
        map.get(&self.key).map_or(MISSING_CATEGORY, String::as_str)
    }
}

impl NumericFeature {
    fn raw(&self, row: &FeatureRow) -> Option<f64> {
        let value = if self.from_attribute {
            row.attributes.get(&self.key).and_then(|text| parse_number(text))
        } else {
            row.numeric.get(self.key.as_str()).copied().flatten()
        };
        value.filter(|number| number.is_finite())
    }
}

impl FeatureSpec {
    /// Fits the spec on training rows. Never fails: features with no usable
    /// values still get columns (they just encode to constants).
    pub fn fit(rows: &[&FeatureRow], params: &EncodingParams) -> Self {
        let mut fixed_categorical = BTreeSet::new();
        let mut fixed_numeric = BTreeSet::new();
        let mut attribute_keys = BTreeSet::new();
        for row in rows {
            fixed_categorical.extend(row.categorical.keys().cloned());
            fixed_numeric.extend(row.numeric.keys().copied());
            attribute_keys.extend(row.attributes.keys().cloned());
        }

        let mut categorical_keys: Vec<(String, bool)> = fixed_categorical.into_iter().map(|key| (key, false)).collect();
        let mut numeric_keys: Vec<(String, bool)> =
            fixed_numeric.into_iter().map(|key| (key.to_owned(), false)).collect();
        for key in attribute_keys {
            let mut present = 0_usize;
            let mut parsed = 0_usize;
            for row in rows {
                if let Some(text) = row.attributes.get(&key) {
                    present += 1;
                    parsed += usize::from(parse_number(text).is_some());
                }
            }
            let numeric_share = parsed as f64 / present.max(1) as f64;
            if present > 0 && numeric_share >= params.numeric_attribute_share {
                numeric_keys.push((key, true));
            } else {
                categorical_keys.push((key, true));
            }
        }

        let mut categorical = Vec::new();
        for (key, from_attribute) in categorical_keys {
            let mut feature = CategoricalFeature { key, from_attribute, values: Vec::new() };
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for row in rows {
                *counts.entry(feature.raw(row)).or_default() += 1;
            }
            let mut frequent: Vec<(&str, usize)> =
                counts.into_iter().filter(|(_, count)| *count >= params.min_category_count.max(1)).collect();
            // Most frequent first; ties by value so the spec is deterministic.
            frequent.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(right.0)));
            frequent.truncate(params.max_categories);
            feature.values = frequent.into_iter().map(|(value, _)| value.to_owned()).collect();
            categorical.push(feature);
        }

        let mut numeric = Vec::new();
        for (key, from_attribute) in numeric_keys {
            let mut feature = NumericFeature { key, from_attribute, mean: 0.0, std: 1.0, missing_column: false };
            let values: Vec<f64> = rows.iter().filter_map(|row| feature.raw(row)).collect();
            feature.missing_column = values.len() < rows.len();
            if !values.is_empty() {
                let count = values.len() as f64;
                let mean = values.iter().sum::<f64>() / count;
                let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
                let std = variance.sqrt();
                // Overflowing sums (absurd inputs) fall back to the identity.
                if mean.is_finite() && std.is_finite() {
                    feature.mean = mean;
                }
                // A constant feature encodes to 0 rather than dividing by 0.
                if std.is_finite() && std > 1e-12 {
                    feature.std = std;
                }
            }
            numeric.push(feature);
        }
        Self { categorical, numeric }
    }

    /// Human-readable column names, in column order.
    pub fn column_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for feature in &self.categorical {
            let name = feature_name(&feature.key, feature.from_attribute);
            for value in &feature.values {
                names.push(format!("{name}={value}"));
            }
            names.push(format!("{name}=(other)"));
        }
        for feature in &self.numeric {
            let name = feature_name(&feature.key, feature.from_attribute);
            if feature.missing_column {
                names.push(format!("{name} (missing)"));
            }
            names.push(name);
        }
        names
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        let categorical: usize = self.categorical.iter().map(|f| f.values.len() + 1).sum();
        let numeric: usize = self.numeric.iter().map(|f| 1 + usize::from(f.missing_column)).sum();
        categorical + numeric
    }

    /// Calls `cell` with each column's value and the raw input behind it, in
    /// column order.
    pub(crate) fn cells<'a>(&'a self, row: &'a FeatureRow, mut cell: impl FnMut(f64, Raw<'a>)) {
        for feature in &self.categorical {
            let raw = feature.raw(row);
            let known = feature.values.iter().any(|value| value == raw);
            for value in &feature.values {
                cell(f64::from(u8::from(value == raw)), Raw::Category(raw));
            }
            cell(f64::from(u8::from(!known)), Raw::Category(raw));
        }
        for feature in &self.numeric {
            let raw = feature.raw(row);
            if feature.missing_column {
                cell(f64::from(u8::from(raw.is_none())), Raw::Presence(raw.is_some()));
            }
            // Missing values sit at the training mean, i.e. 0 after scaling.
            let standardized = raw
                .map(|value| ((value - feature.mean) / feature.std).clamp(-CLIP, CLIP))
                .filter(|value| !value.is_nan())
                .unwrap_or(0.0);
            cell(standardized, Raw::Number(raw));
        }
    }

    /// Encodes a row: for each column, its value and the raw input shown to
    /// people in explanations.
    pub fn encode(&self, row: &FeatureRow) -> Vec<(f64, String)> {
        let mut encoded = Vec::with_capacity(self.width());
        self.cells(row, |value, raw| encoded.push((value, raw.shown())));
        encoded
    }

    /// Encodes a row to its column values.
    pub fn transform(&self, row: &FeatureRow) -> Vec<f64> {
        let mut values = Vec::with_capacity(self.width());
        self.cells(row, |value, _| values.push(value));
        values
    }

    /// Encodes many rows into a design matrix (rows × columns).
    pub fn transform_all(&self, rows: &[&FeatureRow]) -> Array2<f64> {
        self.fill(rows, Array2::zeros((rows.len(), self.width())))
    }

    /// Like [`FeatureSpec::transform_all`], in the layout
    /// [`crate::fit_logistic`] wants: column-major when large, so that it
    /// need not hold a copy next to the matrix (issue 7).
    pub fn transform_for_fit(&self, rows: &[&FeatureRow]) -> Array2<f64> {
        let shape = (rows.len(), self.width());
        if fits_column_major(shape.0, shape.1) {
            self.fill(rows, Array2::zeros(shape.f()))
        } else {
            self.fill(rows, Array2::zeros(shape))
        }
    }

    fn fill(&self, rows: &[&FeatureRow], mut matrix: Array2<f64>) -> Array2<f64> {
        for (row, mut out) in rows.iter().zip(matrix.rows_mut()) {
            let mut column = 0;
            self.cells(row, |value, _| {
                out[column] = value;
                column += 1;
            });
        }
        matrix
    }
}

/// The input behind one encoded column, as explanations show it.
pub(crate) enum Raw<'a> {
    Category(&'a str),
    Presence(bool),
    Number(Option<f64>),
}

impl Raw<'_> {
    pub(crate) fn shown(&self) -> String {
        match self {
            Raw::Category(value) => (*value).to_owned(),
            Raw::Presence(present) => if *present { "present" } else { "missing" }.to_owned(),
            Raw::Number(value) => value.map_or_else(|| "missing".to_owned(), |value| format!("{value:.1}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, days: Option<f64>, attributes: &[(&str, &str)]) -> FeatureRow {
        FeatureRow {
            categorical: std::sync::Arc::new(BTreeMap::from([("source".to_owned(), source.to_owned())])),
            numeric: BTreeMap::from([("days", days)]),
            attributes: std::sync::Arc::new(
                attributes.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
            ),
        }
    }

    const PARAMS: EncodingParams =
        EncodingParams { min_category_count: 2, max_categories: 20, numeric_attribute_share: 0.9 };

    fn training_rows() -> Vec<FeatureRow> {
        vec![
            row("web", Some(1.0), &[("employees", "10"), ("industry", "retail")]),
            row("web", Some(3.0), &[("employees", "30"), ("industry", "retail")]),
            row("cold_call", None, &[("industry", "tech")]),
            row("cold_call", Some(5.0), &[("employees", "50"), ("industry", "42")]),
            row("fair", Some(3.0), &[("employees", "40")]),
        ]
    }

    #[test]
    fn columns_have_readable_names_and_attributes_are_typed() {
        let rows = training_rows();
        let spec = FeatureSpec::fit(&rows.iter().collect::<Vec<_>>(), &PARAMS);
        // "fair" is seen once (below min count 2): it only reaches "(other)".
        // industry is mostly text, so one-hot; employees all parse, so numeric.
        // Fixed features first, then attributes; "(missing)" industry is
        // also seen only once.
        let expected = [
            "source=cold_call",
            "source=web",
            "source=(other)",
            "attr.industry=retail",
            "attr.industry=(other)",
            "days (missing)",
            "days",
            "attr.employees (missing)",
            "attr.employees",
        ];
        assert_eq!(spec.column_names(), expected);
        assert_eq!(spec.width(), expected.len());
    }

    #[test]
    fn scoring_rows_are_encoded_with_training_statistics() {
        let rows = training_rows();
        let spec = FeatureSpec::fit(&rows.iter().collect::<Vec<_>>(), &PARAMS);
        // days: values 1, 3, 5, 3 -> mean 3, population std 1.414...
        let encoded = spec.transform(&row("trade_show", Some(5.0), &[("employees", "NaN")]));
        let expected_days = 2.0 / 2.0_f64.sqrt();
        // Unseen source and absent industry both land in "(other)".
        assert_eq!(&encoded[..5], &[0.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(encoded[5], 0.0, "days present");
        assert!((encoded[6] - expected_days).abs() < 1e-12);
        // NaN is not a number we trust: missing flag, value at the mean.
        assert_eq!(&encoded[7..], &[1.0, 0.0]);
    }

    #[test]
    fn absurd_values_are_clipped_and_the_spec_round_trips_through_json() {
        let rows = training_rows();
        let spec = FeatureSpec::fit(&rows.iter().collect::<Vec<_>>(), &PARAMS);
        let encoded = spec.transform(&row("web", Some(1e12), &[]));
        assert_eq!(encoded[6], CLIP);
        let json = serde_json::to_string(&spec).expect("serialize");
        let restored: FeatureSpec = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(restored, spec);
    }

    #[test]
    fn a_large_matrix_for_fitting_is_column_major_with_the_same_values() {
        let rows = training_rows();
        let spec = FeatureSpec::fit(&rows.iter().collect::<Vec<_>>(), &PARAMS);
        let many: Vec<&FeatureRow> = rows.iter().cycle().take((1 << 20) / spec.width() + 1).collect();
        let for_fit = spec.transform_for_fit(&many);
        assert!(for_fit.t().is_standard_layout(), "column-major");
        assert_eq!(for_fit, spec.transform_all(&many));
        let few = spec.transform_for_fit(&many[..5]);
        assert!(few.is_standard_layout(), "small matrices keep the row-major layout the known answers pin");
    }
}
