//! The known truth behind the simulator: the weekly hazards every simulated
//! opportunity is drawn from. Tests (and model evaluations) check that what a
//! model learns from simulated data points the same way as these numbers.
//!
//! Each week an open opportunity in stage `s` advances with probability
//! `sigmoid(advance logit)` and leaks with `sigmoid(leak logit)`, where each
//! logit is a stage base plus additive effects. Effects are in logit units.

/// Stages a simulated opportunity moves through; the last is the won stage.
pub const STAGES: [&str; 4] = ["prospect", "qualified", "committed", "transacted"];

/// Weekly advance logit per open stage (prospect, qualified, committed).
pub const STAGE_ADVANCE_BASE: [f64; 3] = [-2.3, -2.6, -2.2];
/// Weekly leak logit per open stage: later stages leak less.
pub const STAGE_LEAK_BASE: [f64; 3] = [-3.3, -3.6, -3.9];

/// Each activity in the week adds this to the advance logit (capped, below).
pub const ADVANCE_PER_ACTIVITY: f64 = 0.30;
/// Each activity in the week adds this to the leak logit.
pub const LEAK_PER_ACTIVITY: f64 = -0.30;
/// Activities beyond this count add nothing more in one week.
pub const MAX_COUNTED_ACTIVITIES: u32 = 4;
/// Each idle week (no activity, no stage change) before this one.
pub const ADVANCE_PER_IDLE_WEEK: f64 = -0.10;
pub const LEAK_PER_IDLE_WEEK: f64 = 0.22;
/// Idle weeks beyond this count add nothing more.
pub const MAX_COUNTED_IDLE_WEEKS: u32 = 12;

/// Weekly chance of a backward move by one stage (from qualified or later).
pub const BACKWARD_HAZARD: f64 = 0.012;
/// Chance that a leaked opportunity is reopened (once) 2 to 16 weeks later.
pub const REOPEN_PROBABILITY: f64 = 0.06;

/// How a lead source shifts the hazards and how engaged its leads start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceEffect {
    pub name: &'static str,
    pub advance: f64,
    pub leak: f64,
    /// Mean activities per week at the start (the engagement level).
    pub initial_engagement: f64,
}

/// Known sources; any other source name has no effect and engagement 1.0.
pub const SOURCE_EFFECTS: [SourceEffect; 6] = [
    SourceEffect { name: "referral", advance: 0.50, leak: -0.80, initial_engagement: 1.8 },
    SourceEffect { name: "partner", advance: 0.30, leak: -0.40, initial_engagement: 1.4 },
    SourceEffect { name: "inbound", advance: 0.20, leak: -0.20, initial_engagement: 1.3 },
    SourceEffect { name: "website", advance: 0.0, leak: 0.0, initial_engagement: 1.0 },
    SourceEffect { name: "event", advance: 0.0, leak: 0.10, initial_engagement: 1.1 },
    SourceEffect { name: "cold_call", advance: -0.50, leak: 1.00, initial_engagement: 0.6 },
];

/// How an account's industry shifts the hazards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndustryEffect {
    pub name: &'static str,
    pub advance: f64,
    pub leak: f64,
}

pub const INDUSTRY_EFFECTS: [IndustryEffect; 6] = [
    IndustryEffect { name: "technology", advance: 0.15, leak: 0.0 },
    IndustryEffect { name: "finance", advance: -0.10, leak: -0.20 },
    IndustryEffect { name: "healthcare", advance: -0.20, leak: -0.10 },
    IndustryEffect { name: "retail", advance: 0.10, leak: 0.30 },
    IndustryEffect { name: "manufacturing", advance: 0.0, leak: 0.0 },
    IndustryEffect { name: "education", advance: -0.25, leak: 0.10 },
];

/// A product: its deal size (log-normal) and how it shifts the advance logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductProfile {
    pub name: &'static str,
    /// Median deal amount in USD; amounts are `median * exp(sigma * N(0,1))`.
    pub median_amount_usd: f64,
    pub amount_sigma: f64,
    pub advance: f64,
    /// Relative frequency among small and mid-sized accounts.
    pub weight: f64,
}

pub const PRODUCT_PROFILES: [ProductProfile; 3] = [
    ProductProfile { name: "starter", median_amount_usd: 1_500.0, amount_sigma: 0.40, advance: 0.20, weight: 0.50 },
    ProductProfile {
        name: "professional",
        median_amount_usd: 12_000.0,
        amount_sigma: 0.50,
        advance: 0.0,
        weight: 0.35,
    },
    ProductProfile {
        name: "enterprise",
        median_amount_usd: 90_000.0,
        amount_sigma: 0.60,
        advance: -0.30,
        weight: 0.15,
    },
];

/// Regions carry no effect at all: a model should learn nothing from them.
pub const REGIONS: [&str; 4] = ["north_america", "emea", "apac", "latam"];

/// Company-size effect, by employees: (advance, leak). Small companies decide
/// fast and drop fast; large ones are slow but stick.
pub fn company_size_effect(employees: u32) -> (f64, f64) {
    match employees {
        0..50 => (0.20, 0.20),
        50..1_000 => (0.0, 0.0),
        _ => (-0.30, -0.30),
    }
}

/// Everything the weekly hazards depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HazardInputs<'a> {
    /// Index into [`STAGES`] of the current (open) stage: 0, 1 or 2.
    pub stage_index: usize,
    pub source: &'a str,
    pub industry: &'a str,
    pub product: &'a str,
    pub employees: u32,
    /// Activities logged during the week being decided.
    pub activities_this_week: u32,
    /// Whole weeks before this one without activity or stage change.
    pub weeks_idle: u32,
}

pub fn source_effect(source: &str) -> Option<&'static SourceEffect> {
    SOURCE_EFFECTS.iter().find(|effect| effect.name == source)
}

fn industry_effect(industry: &str) -> (f64, f64) {
    INDUSTRY_EFFECTS
        .iter()
        .find(|effect| effect.name == industry)
        .map_or((0.0, 0.0), |effect| (effect.advance, effect.leak))
}

fn product_advance(product: &str) -> f64 {
    PRODUCT_PROFILES.iter().find(|profile| profile.name == product).map_or(0.0, |profile| profile.advance)
}

fn counted(value: u32, cap: u32) -> f64 {
    f64::from(value.min(cap))
}

/// Weekly advance logit (before the sigmoid).
pub fn true_advance_logit(inputs: &HazardInputs<'_>) -> f64 {
    let stage_base = STAGE_ADVANCE_BASE[inputs.stage_index.min(STAGE_ADVANCE_BASE.len() - 1)];
    let source = source_effect(inputs.source).map_or(0.0, |effect| effect.advance);
    let (industry, _) = industry_effect(inputs.industry);
    let (size, _) = company_size_effect(inputs.employees);
    stage_base
        + source
        + industry
        + size
        + product_advance(inputs.product)
        + ADVANCE_PER_ACTIVITY * counted(inputs.activities_this_week, MAX_COUNTED_ACTIVITIES)
        + ADVANCE_PER_IDLE_WEEK * counted(inputs.weeks_idle, MAX_COUNTED_IDLE_WEEKS)
}

/// Weekly leak logit (before the sigmoid).
pub fn true_leak_logit(inputs: &HazardInputs<'_>) -> f64 {
    let stage_base = STAGE_LEAK_BASE[inputs.stage_index.min(STAGE_LEAK_BASE.len() - 1)];
    let source = source_effect(inputs.source).map_or(0.0, |effect| effect.leak);
    let (_, industry) = industry_effect(inputs.industry);
    let (_, size) = company_size_effect(inputs.employees);
    stage_base
        + source
        + industry
        + size
        + LEAK_PER_ACTIVITY * counted(inputs.activities_this_week, MAX_COUNTED_ACTIVITIES)
        + LEAK_PER_IDLE_WEEK * counted(inputs.weeks_idle, MAX_COUNTED_IDLE_WEEKS)
}

/// Probability of advancing one stage this week.
pub fn true_advance_hazard(inputs: &HazardInputs<'_>) -> f64 {
    sigmoid(true_advance_logit(inputs))
}

/// Probability of leaking this week.
pub fn true_leak_hazard(inputs: &HazardInputs<'_>) -> f64 {
    sigmoid(true_leak_logit(inputs))
}

pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(source: &str, activities: u32, idle: u32) -> HazardInputs<'_> {
        HazardInputs {
            stage_index: 0,
            source,
            industry: "manufacturing",
            product: "professional",
            employees: 200,
            activities_this_week: activities,
            weeks_idle: idle,
        }
    }

    #[test]
    fn cold_calls_leak_more_and_advance_less_than_referrals() {
        let cold = inputs("cold_call", 1, 0);
        let referral = inputs("referral", 1, 0);
        assert!(true_leak_hazard(&cold) > 2.0 * true_leak_hazard(&referral));
        assert!(true_advance_hazard(&cold) < true_advance_hazard(&referral));
    }

    #[test]
    fn idleness_raises_leaks_and_activity_lowers_them() {
        let busy = inputs("website", 3, 0);
        let idle = inputs("website", 0, 6);
        assert!(true_leak_hazard(&idle) > 3.0 * true_leak_hazard(&busy));
        assert!(true_advance_hazard(&busy) > true_advance_hazard(&idle));
        // The cap keeps hazards bounded however long an opportunity idles.
        assert_eq!(true_leak_hazard(&inputs("website", 0, 12)), true_leak_hazard(&inputs("website", 0, 400)));
    }
}
