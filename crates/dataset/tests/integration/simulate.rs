use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use funnel_dataset::{Error, OpportunityRecord, RecordStatus, SimulationConfig, default_pipeline, simulate};

fn config(seed: u64, opportunities: u64) -> SimulationConfig {
    SimulationConfig { seed, opportunities, ..SimulationConfig::default() }
}

fn run(config: &SimulationConfig) -> Vec<OpportunityRecord> {
    simulate(config).expect("config is valid").collect()
}

#[test]
fn the_same_seed_gives_the_same_records_and_another_seed_does_not() {
    // Plain asserts: a failing assert_eq would print 300 records.
    let first = run(&config(11, 300));
    assert!(first == run(&config(11, 300)), "same seed, different records");
    let other_seed = run(&config(12, 300));
    let differing = first.iter().zip(&other_seed).filter(|(left, right)| left != right).count();
    assert!(differing > 290, "only {differing} of 300 records differ");
    // Records are independent of each other: any one can be made alone.
    let simulation = simulate(&config(11, 300)).expect("config is valid");
    assert!(simulation.record(123) == first[123]);
    assert_eq!(simulation.len(), 300);
}

#[test]
fn configs_out_of_range_are_refused_naming_the_field() {
    let cases = [
        ("opportunities", SimulationConfig { opportunities: 9, ..SimulationConfig::default() }),
        ("reps", SimulationConfig { reps: 0, ..SimulationConfig::default() }),
        ("sources", SimulationConfig { sources: Vec::new(), ..SimulationConfig::default() }),
        ("end", SimulationConfig { end: SimulationConfig::default().start, ..SimulationConfig::default() }),
    ];
    for (expected_field, bad_config) in cases {
        let outcome = simulate(&bad_config);
        assert!(
            matches!(outcome, Err(Error::InvalidConfig { field, .. }) if field == expected_field),
            "{expected_field}"
        );
    }
}

/// Every timestamp of a record, history and activities merged, in time order.
fn all_times(record: &OpportunityRecord) -> Vec<DateTime<Utc>> {
    let mut times: Vec<DateTime<Utc>> = record.history.iter().map(|entry| entry.occurred_at).collect();
    times.extend(record.activities.iter().map(|activity| activity.occurred_at));
    times.sort();
    times
}

#[test]
fn every_record_is_valid_and_stays_inside_the_simulated_span() {
    let simulation_config = config(3, 5_000);
    let pipeline = default_pipeline();
    for record in run(&simulation_config) {
        record.validate(&pipeline).expect("simulated records follow FORMAT.md");
        let times = all_times(&record);
        assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{} has equal timestamps", record.external_id);
        assert!(times[0] >= simulation_config.start && times[times.len() - 1] <= simulation_config.end);
        let creation = &record.history[0];
        assert_eq!((creation.stage.as_str(), creation.status), ("prospect", RecordStatus::Open));
        match record.final_status() {
            RecordStatus::Won => assert_eq!(record.final_stage(), "transacted"),
            RecordStatus::Leaked => {
                assert!(!record.history[record.history.len() - 1].reason.is_empty())
            }
            RecordStatus::Open => assert_ne!(record.final_stage(), "transacted"),
        }
        assert!(record.amount_minor > 0);
        for attribute in ["industry", "company_size", "product", "region"] {
            assert!(record.attributes.contains_key(attribute), "{attribute} missing");
        }
    }
}

/// Share of records per final status, plus the leak share among closed ones
/// per source.
struct Outcomes {
    open_share: f64,
    won_share: f64,
    leak_share_by_source: HashMap<String, f64>,
}

fn outcomes(records: &[OpportunityRecord]) -> Outcomes {
    let mut counts: HashMap<RecordStatus, usize> = HashMap::new();
    let mut closed_by_source: HashMap<String, (usize, usize)> = HashMap::new();
    for record in records {
        let status = record.final_status();
        *counts.entry(status).or_default() += 1;
        if status != RecordStatus::Open {
            let (leaked, closed) = closed_by_source.entry(record.source.clone()).or_default();
            *closed += 1;
            *leaked += usize::from(status == RecordStatus::Leaked);
        }
    }
    let share = |status| counts.get(&status).copied().unwrap_or(0) as f64 / records.len() as f64;
    let leak_share_by_source = closed_by_source
        .into_iter()
        .map(|(source, (leaked, closed))| (source, leaked as f64 / closed as f64))
        .collect();
    Outcomes { open_share: share(RecordStatus::Open), won_share: share(RecordStatus::Won), leak_share_by_source }
}

#[test]
fn the_known_truth_shows_in_the_output() {
    let records = run(&config(5, 5_000));
    let summary = outcomes(&records);
    println!(
        "open {:.3} won {:.3} leak by source {:?}",
        summary.open_share, summary.won_share, summary.leak_share_by_source
    );
    assert!((0.20..=0.35).contains(&summary.open_share), "open share {}", summary.open_share);
    assert!((0.15..=0.45).contains(&summary.won_share), "won share {}", summary.won_share);
    let cold_call = summary.leak_share_by_source["cold_call"];
    let referral = summary.leak_share_by_source["referral"];
    assert!(cold_call > referral + 0.25, "cold_call {cold_call} vs referral {referral}");

    // Engaged leads are busier: activities per week of life are higher for
    // won deals than for leaked ones.
    let mut activity_rates: HashMap<RecordStatus, (f64, usize)> = HashMap::new();
    for record in &records {
        let weeks =
            (all_times(record)[all_times(record).len() - 1] - record.history[0].occurred_at).num_days() as f64 / 7.0;
        if weeks >= 2.0 {
            let (sum, count) = activity_rates.entry(record.final_status()).or_default();
            *sum += record.activities.len() as f64 / weeks;
            *count += 1;
        }
    }
    let mean_rate = |status| {
        let (sum, count) = activity_rates[&status];
        sum / count as f64
    };
    println!(
        "activities per week: won {:.2} leaked {:.2}",
        mean_rate(RecordStatus::Won),
        mean_rate(RecordStatus::Leaked)
    );
    assert!(mean_rate(RecordStatus::Won) > 1.3 * mean_rate(RecordStatus::Leaked));
}

#[test]
fn activities_thin_out_before_a_leak() {
    let records = run(&config(8, 5_000));
    let window = TimeDelta::days(28);
    let mut before_leak = (0usize, 0usize);
    let mut before_win = (0usize, 0usize);
    for record in &records {
        let last = &record.history[record.history.len() - 1];
        let tally = match last.status {
            RecordStatus::Leaked => &mut before_leak,
            RecordStatus::Won => &mut before_win,
            RecordStatus::Open => continue,
        };
        if last.occurred_at - record.history[0].occurred_at < window {
            continue;
        }
        let recent = record.activities.iter().filter(|activity| last.occurred_at - activity.occurred_at <= window);
        tally.0 += recent.count();
        tally.1 += 1;
    }
    let leak_rate = before_leak.0 as f64 / before_leak.1 as f64;
    let win_rate = before_win.0 as f64 / before_win.1 as f64;
    println!("activities in the 4 weeks before: leak {leak_rate:.2} win {win_rate:.2}");
    assert!(win_rate > 1.5 * leak_rate);
}

#[test]
fn stories_include_backward_moves_reopens_and_idle_leaks() {
    let records = run(&config(9, 5_000));
    let notes =
        |wanted: &str| records.iter().filter(|record| record.history.iter().any(|entry| entry.note == wanted)).count();
    let idle_leaks =
        records.iter().filter(|record| record.history.iter().any(|entry| entry.reason == "no_response")).count();
    println!("moved back {} reopened {} idle leaks {idle_leaks}", notes("moved back"), notes("reopened"));
    assert!(notes("moved back") >= 20);
    assert!(notes("reopened") >= 20);
    assert!(idle_leaks >= 100);
}

#[test]
fn a_renamed_pipeline_keeps_the_default_stages() {
    let renamed = SimulationConfig { pipeline: "demo".to_owned(), ..config(4, 50) };
    let simulation = simulate(&renamed).expect("config is valid");
    let pipeline = simulation.pipeline();
    assert_eq!(pipeline.stages, default_pipeline().stages);
    for record in simulation {
        assert_eq!(record.pipeline, "demo");
        record.validate(&pipeline).expect("records match the renamed pipeline");
    }
}
