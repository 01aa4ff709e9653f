//! Deterministic funnel simulator. Opportunity `i` is drawn from its own
//! ChaCha stream (key from the seed, stream `i`), so the output streams in
//! bounded memory, any record can be regenerated alone, and generation could
//! be split across threads without changing a byte. The hazards come from
//! [`crate::truth`].

use std::f64::consts::TAU;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::record::{OpportunityRecord, PipelineSpec, StageSpec};
use crate::story::{Story, StoryInputs};
use crate::truth::{INDUSTRY_EFFECTS, PRODUCT_PROFILES, REGIONS, SOURCE_EFFECTS, STAGES};

/// Smallest and largest number of opportunities a simulation may produce.
pub const MIN_OPPORTUNITIES: u64 = 10;
pub const MAX_OPPORTUNITIES: u64 = 10_000_000;

/// Account profiles use their own key so they do not depend on which
/// opportunity first mentions the account.
const ACCOUNT_KEY_SALT: u64 = 0x6163_636f_756e_7473;

/// What to simulate. Check it with [`simulate`], which validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationConfig {
    /// Same seed and config, same output. Default 42.
    pub seed: u64,
    /// How many opportunities, `10..=10_000_000`. Default 1,000.
    pub opportunities: u64,
    /// Sales reps (owners `rep-001`...), at least 1. Default 12.
    pub reps: u32,
    /// Lead sources drawn uniformly; names in [`SOURCE_EFFECTS`] carry known
    /// effects, others none. Default: all six known sources.
    pub sources: Vec<String>,
    /// Opportunities are created uniformly in `[start, end)`; nothing happens
    /// after `end`. Default 2024-01-01 to 2025-01-01.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Pipeline name written into records; stages are always [`STAGES`].
    /// Default `sales`.
    pub pipeline: String,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default();
        let end = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
        SimulationConfig {
            seed: 42,
            opportunities: 1_000,
            reps: 12,
            sources: SOURCE_EFFECTS.iter().map(|effect| effect.name.to_owned()).collect(),
            start,
            end,
            pipeline: "sales".to_owned(),
        }
    }
}

impl SimulationConfig {
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if !(MIN_OPPORTUNITIES..=MAX_OPPORTUNITIES).contains(&self.opportunities) {
            let reason = format!("{} is outside {MIN_OPPORTUNITIES}..={MAX_OPPORTUNITIES}", self.opportunities);
            return invalid("opportunities", reason);
        }
        if self.reps == 0 {
            return invalid("reps", "at least one rep is needed".to_owned());
        }
        if self.sources.is_empty() || self.sources.iter().any(|source| source.trim().is_empty()) {
            return invalid("sources", "need at least one non-empty source".to_owned());
        }
        if self.start >= self.end {
            return invalid("end", format!("{} is not after start {}", self.end, self.start));
        }
        if self.pipeline.trim().is_empty() {
            return invalid("pipeline", "is empty".to_owned());
        }
        Ok(())
    }
}

/// The simulated pipeline: prospect, qualified, committed, transacted.
pub fn default_pipeline() -> PipelineSpec {
    let rot_after_days = [Some(21), Some(30), Some(30), None];
    let stages = STAGES
        .iter()
        .zip(rot_after_days)
        .map(|(key, rot_after_days)| StageSpec {
            key: (*key).to_owned(),
            display_name: capitalise(key),
            rot_after_days,
        })
        .collect();
    PipelineSpec { name: "sales".to_owned(), display_name: "Sales".to_owned(), stages }
}

/// Validates the config and returns the stream of records, in index order.
pub fn simulate(config: &SimulationConfig) -> Result<Simulation> {
    config.validate()?;
    Ok(Simulation { config: config.clone(), next_index: 0 })
}

/// A validated simulation: an iterator over its records, and random access
/// to any one of them via [`Simulation::record`].
#[derive(Debug, Clone)]
pub struct Simulation {
    config: SimulationConfig,
    next_index: u64,
}

/// The fixed traits of an account, shared by all its opportunities.
struct Account {
    name: String,
    industry: &'static str,
    employees: u32,
    region: &'static str,
}

impl Simulation {
    /// The pipeline the records run in: [`default_pipeline`] under the
    /// configured name, so `record.validate(&simulation.pipeline())` holds.
    pub fn pipeline(&self) -> PipelineSpec {
        PipelineSpec { name: self.config.pipeline.clone(), ..default_pipeline() }
    }

    /// Opportunity `index` (`0..opportunities`), independent of all others.
    pub fn record(&self, index: u64) -> OpportunityRecord {
        let config = &self.config;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(index);
        let span_seconds = (config.end - config.start).num_seconds().max(1);
        let created_at = config.start + TimeDelta::seconds(rng.random_range(0..span_seconds));
        let account_count = (config.opportunities / 3).max(10);
        let account = self.account(rng.random_range(0..account_count));
        let source = config.sources[rng.random_range(0..config.sources.len())].as_str();
        let owner = format!("rep-{:03}", rng.random_range(0..config.reps) + 1);
        let product = pick_product(&mut rng, account.employees);
        let amount_usd = product.median_amount_usd * (product.amount_sigma * standard_normal(&mut rng)).exp();
        // Whole dollars: CRM amounts rarely carry cents.
        let amount_minor = amount_usd.round() as i64 * 100;

        let story = Story::tell(
            &mut rng,
            &StoryInputs {
                source,
                industry: account.industry,
                product: product.name,
                employees: account.employees,
                owner: &owner,
                created_at,
                end: config.end,
            },
        );
        let attributes = [
            ("industry", account.industry.to_owned()),
            ("company_size", account.employees.to_string()),
            ("product", product.name.to_owned()),
            ("region", account.region.to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        OpportunityRecord {
            pipeline: config.pipeline.clone(),
            external_id: format!("sim-{}-{index:08}", config.seed),
            title: format!("{} for {}", capitalise(product.name), account.name),
            account: account.name,
            owner,
            currency: "USD".to_owned(),
            amount_minor,
            source: source.to_owned(),
            attributes,
            history: story.history,
            activities: story.activities,
        }
    }

    fn account(&self, account_index: u64) -> Account {
        const PREFIXES: [&str; 12] =
            ["North", "Blue", "Vertex", "Silver", "Oak", "Bright", "Iron", "Clear", "Summit", "Red", "Nova", "Delta"];
        const KINDS: [&str; 8] = ["Systems", "Labs", "Holdings", "Foods", "Logistics", "Health", "Works", "Partners"];
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ ACCOUNT_KEY_SALT);
        rng.set_stream(account_index);
        let prefix = PREFIXES[rng.random_range(0..PREFIXES.len())];
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let industry = INDUSTRY_EFFECTS[rng.random_range(0..INDUSTRY_EFFECTS.len())].name;
        // Log-normal head count: median 150, long tail of large companies.
        let employees = (150.0 * (1.4 * standard_normal(&mut rng)).exp()).clamp(2.0, 250_000.0) as u32;
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        Account { name: format!("{prefix} {kind} {account_index:05}"), industry, employees, region }
    }
}

impl Iterator for Simulation {
    type Item = OpportunityRecord;

    fn next(&mut self) -> Option<OpportunityRecord> {
        if self.next_index >= self.config.opportunities {
            return None;
        }
        let record = self.record(self.next_index);
        self.next_index += 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining_records = self.config.opportunities.saturating_sub(self.next_index);
        let remaining = usize::try_from(remaining_records).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for Simulation {}

/// Large accounts buy the enterprise product far more often.
fn pick_product(rng: &mut ChaCha8Rng, employees: u32) -> &'static crate::truth::ProductProfile {
    let enterprise_boost = if employees >= 1_000 { 3.0 } else { 1.0 };
    let weights: Vec<f64> = PRODUCT_PROFILES
        .iter()
        .map(|profile| if profile.name == "enterprise" { profile.weight * enterprise_boost } else { profile.weight })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut draw = rng.random::<f64>() * total;
    for (profile, weight) in PRODUCT_PROFILES.iter().zip(weights) {
        if draw < weight {
            return profile;
        }
        draw -= weight;
    }
    &PRODUCT_PROFILES[PRODUCT_PROFILES.len() - 1]
}

/// Box-Muller: rand 0.9 alone has no normal distribution.
pub(crate) fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let uniform_open: f64 = 1.0 - rng.random::<f64>();
    let angle = TAU * rng.random::<f64>();
    (-2.0 * uniform_open.ln()).sqrt() * angle.cos()
}

fn capitalise(word: &str) -> String {
    let mut characters = word.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}
