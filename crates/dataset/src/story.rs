//! The life of one simulated opportunity, week by week: activities drawn
//! from a drifting engagement level, then at most one event (leak, advance,
//! backward move) drawn from the known hazards in [`crate::truth`].

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::record::{ActivityEntry, ActivityKind, HistoryEntry, RecordStatus};
use crate::simulate::standard_normal;
use crate::truth::{
    BACKWARD_HAZARD, HazardInputs, REOPEN_PROBABILITY, STAGES, source_effect, true_advance_hazard, true_leak_hazard,
};

const WEEK_SECONDS: i64 = 7 * 24 * 3600;
/// Activities land at least this long before the week ends, so the 1-second
/// bumps that keep timestamps strictly increasing never cross into the next
/// week (or past the end of the simulation).
const WEEK_MARGIN_SECONDS: i64 = 3600;
/// Engagement drifts down a little each week: interest fades unless a stage
/// change renews it, which is what thins activities out before a leak.
const ENGAGEMENT_DRIFT: f64 = -0.05;
const ENGAGEMENT_VOLATILITY: f64 = 0.25;
const ENGAGEMENT_BOOST_ON_ADVANCE: f64 = 1.15;
const LEAK_REASONS: [&str; 4] = ["budget", "competitor", "timing", "no_decision"];

pub(crate) struct StoryInputs<'a> {
    pub source: &'a str,
    pub industry: &'a str,
    pub product: &'a str,
    pub employees: u32,
    pub owner: &'a str,
    pub created_at: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

pub(crate) struct Story {
    pub history: Vec<HistoryEntry>,
    pub activities: Vec<ActivityEntry>,
    /// Latest timestamp so far, across history and activities.
    last: DateTime<Utc>,
}

enum WeekEvent {
    Leak,
    Advance,
    Back,
}

impl Story {
    pub(crate) fn tell(rng: &mut ChaCha8Rng, inputs: &StoryInputs<'_>) -> Story {
        let mut story = Story { history: Vec::new(), activities: Vec::new(), last: inputs.created_at };
        story.push_history(inputs, STAGES[0], RecordStatus::Open, inputs.created_at, "", "created");
        let initial_engagement = source_effect(inputs.source).map_or(1.0, |effect| effect.initial_engagement)
            * (0.3 * standard_normal(rng)).exp();
        let mut engagement = initial_engagement;
        let mut stage_index = 0;
        let mut weeks_idle = 0;
        let mut reopened = false;
        let mut week_start = inputs.created_at;
        loop {
            let week_end = week_start + TimeDelta::seconds(WEEK_SECONDS);
            if week_end > inputs.end {
                // The story has not ended by the end of the simulation: open.
                break;
            }
            let activity_count = poisson(rng, engagement);
            let hazard_inputs = HazardInputs {
                stage_index,
                source: inputs.source,
                industry: inputs.industry,
                product: inputs.product,
                employees: inputs.employees,
                activities_this_week: activity_count,
                weeks_idle,
            };
            let leak = true_leak_hazard(&hazard_inputs);
            let advance = true_advance_hazard(&hazard_inputs);
            let back = if stage_index > 0 { BACKWARD_HAZARD } else { 0.0 };
            let draw = rng.random::<f64>();
            let event = if draw < leak {
                Some(WeekEvent::Leak)
            } else if draw < leak + advance {
                Some(WeekEvent::Advance)
            } else if draw < leak + advance + back {
                Some(WeekEvent::Back)
            } else {
                None
            };
            story.push_activities(rng, inputs, week_start, activity_count, engagement);
            let Some(event) = event else {
                weeks_idle = if activity_count > 0 { 0 } else { weeks_idle + 1 };
                engagement = drift(rng, engagement);
                week_start = week_end;
                continue;
            };
            let event_at = story.event_time(rng, week_start, week_end);
            let stage = STAGES[stage_index];
            match event {
                WeekEvent::Leak => {
                    let reason = if weeks_idle >= 3 {
                        "no_response"
                    } else {
                        LEAK_REASONS[rng.random_range(0..LEAK_REASONS.len())]
                    };
                    story.push_history(inputs, stage, RecordStatus::Leaked, event_at, reason, "");
                    if reopened || !rng.random_bool(REOPEN_PROBABILITY) {
                        break;
                    }
                    let pause = TimeDelta::seconds(rng.random_range(2 * WEEK_SECONDS..=16 * WEEK_SECONDS));
                    let reopen_at = event_at + pause;
                    if reopen_at >= inputs.end {
                        break;
                    }
                    reopened = true;
                    story.push_history(inputs, stage, RecordStatus::Open, reopen_at, "", "reopened");
                    engagement = initial_engagement;
                    week_start = reopen_at;
                }
                WeekEvent::Advance if stage_index + 2 == STAGES.len() => {
                    let won_stage = STAGES[stage_index + 1];
                    story.push_history(inputs, won_stage, RecordStatus::Won, event_at, "", "closed won");
                    break;
                }
                WeekEvent::Advance => {
                    stage_index += 1;
                    story.push_history(inputs, STAGES[stage_index], RecordStatus::Open, event_at, "", "advanced");
                    engagement *= ENGAGEMENT_BOOST_ON_ADVANCE;
                    week_start = week_end;
                }
                WeekEvent::Back => {
                    stage_index -= 1;
                    story.push_history(inputs, STAGES[stage_index], RecordStatus::Open, event_at, "", "moved back");
                    week_start = week_end;
                }
            }
            weeks_idle = 0;
        }
        story
    }

    fn push_history(
        &mut self,
        inputs: &StoryInputs<'_>,
        stage: &str,
        status: RecordStatus,
        occurred_at: DateTime<Utc>,
        reason: &str,
        note: &str,
    ) {
        self.last = occurred_at;
        self.history.push(HistoryEntry {
            stage: stage.to_owned(),
            status,
            occurred_at,
            actor: inputs.owner.to_owned(),
            reason: reason.to_owned(),
            note: note.to_owned(),
        });
    }

    /// Activities at uniform times in the week, strictly after everything so
    /// far; engaged prospects get relatively more meetings.
    fn push_activities(
        &mut self,
        rng: &mut ChaCha8Rng,
        inputs: &StoryInputs<'_>,
        week_start: DateTime<Utc>,
        count: u32,
        engagement: f64,
    ) {
        let mut offsets: Vec<i64> =
            (0..count).map(|_| rng.random_range(1..WEEK_SECONDS - WEEK_MARGIN_SECONDS)).collect();
        offsets.sort_unstable();
        for offset in offsets {
            let drawn_at = week_start + TimeDelta::seconds(offset);
            let occurred_at = drawn_at.max(self.last + TimeDelta::seconds(1));
            let kind = activity_kind(rng, engagement);
            self.last = occurred_at;
            self.activities.push(ActivityEntry {
                kind,
                occurred_at,
                actor: inputs.owner.to_owned(),
                note: String::new(),
            });
        }
    }

    /// The week's event comes after its activities, so they all count.
    fn event_time(&self, rng: &mut ChaCha8Rng, week_start: DateTime<Utc>, week_end: DateTime<Utc>) -> DateTime<Utc> {
        let earliest = self.last.max(week_start) + TimeDelta::seconds(1);
        let room = (week_end - earliest).num_seconds();
        if room <= 1 {
            return earliest;
        }
        earliest + TimeDelta::seconds(rng.random_range(0..room))
    }
}

fn activity_kind(rng: &mut ChaCha8Rng, engagement: f64) -> ActivityKind {
    let meeting_weight = 0.08 + 0.08 * engagement;
    let weights = [
        (ActivityKind::Call, 0.35),
        (ActivityKind::Email, 0.35),
        (ActivityKind::Meeting, meeting_weight),
        (ActivityKind::Note, 0.12),
    ];
    let total: f64 = weights.iter().map(|(_, weight)| weight).sum();
    let mut draw = rng.random::<f64>() * total;
    for (kind, weight) in weights {
        if draw < weight {
            return kind;
        }
        draw -= weight;
    }
    ActivityKind::Note
}

fn drift(rng: &mut ChaCha8Rng, engagement: f64) -> f64 {
    let step = ENGAGEMENT_DRIFT + ENGAGEMENT_VOLATILITY * standard_normal(rng);
    (engagement * step.exp()).clamp(0.02, 5.0)
}

/// Knuth's method; fine for the small rates used here (at most 5).
fn poisson(rng: &mut ChaCha8Rng, rate: f64) -> u32 {
    let threshold = (-rate.clamp(0.0, 5.0)).exp();
    let mut count = 0;
    let mut product = rng.random::<f64>();
    while product > threshold {
        count += 1;
        product *= rng.random::<f64>();
    }
    count
}
