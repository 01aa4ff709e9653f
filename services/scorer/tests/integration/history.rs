//! A history with a known structure, imported through the gRPC API: leads
//! from `cold_call` and leads nobody works on leak far more often than
//! worked referrals. Outcomes come from a fixed hash, so every run sees the
//! same data.

use chrono::{DateTime, Duration, Utc};
use funnel_proto::v1::{self as pb, pipeline_service_client::PipelineServiceClient};
use prost_types::Timestamp;
use tonic::transport::Channel;

/// What the generator knows about each lead it made.
#[derive(Debug, Clone)]
pub struct Truth {
    pub external_id: String,
    pub cold_call: bool,
    /// Nobody logs activities on it.
    pub idle: bool,
}

fn timestamp(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp { seconds: at.timestamp(), nanos: 0 })
}

/// Deterministic uniform [0, 1) from two integers (SplitMix64).
fn unit(a: u64, b: u64) -> f64 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Builds `count` leads on the default `sales` pipeline ending at `now`.
pub fn known_history(count: u64, now: DateTime<Utc>) -> (Vec<pb::ImportedOpportunity>, Vec<Truth>) {
    let stages = ["prospect", "qualified", "committed", "transacted"];
    let mut opportunities = Vec::new();
    let mut truths = Vec::new();
    for index in 0..count {
        let cold_call = index % 2 == 0;
        let idle = unit(index, 99) < 0.4;
        let source = if cold_call { "cold_call" } else { "referral" };
        let created = now - Duration::days(200) + Duration::hours((unit(index, 7) * 190.0 * 24.0) as i64);
        let owner = format!("rep-{}", index % 5);
        let mut history = vec![pb::ImportedHistoryEntry {
            stage: stages[0].to_owned(),
            status: pb::OpportunityStatus::Open as i32,
            occurred_at: timestamp(created),
            actor: owner.clone(),
            ..Default::default()
        }];
        let mut activities = Vec::new();
        let mut entered = created;
        for (position, next) in stages.iter().enumerate().skip(1) {
            let days_in_stage = 4 + (unit(index, position as u64 * 31) * 20.0) as i64;
            let leaves_at = entered + Duration::days(days_in_stage);
            if !idle {
                let mut day = 1;
                while day < days_in_stage && entered + Duration::days(day) < now {
                    activities.push(pb::ImportedActivity {
                        kind: pb::ActivityKind::Call as i32,
                        occurred_at: timestamp(entered + Duration::days(day)),
                        actor: owner.clone(),
                        note: String::new(),
                    });
                    day += 3;
                }
            }
            if leaves_at >= now {
                break; // still open: what gets scored
            }
            let mut advance_chance: f64 = if cold_call { 0.35 } else { 0.85 };
            if idle {
                advance_chance -= 0.3;
            }
            if unit(index, position as u64 * 131 + 5) < advance_chance {
                let status =
                    if *next == "transacted" { pb::OpportunityStatus::Won } else { pb::OpportunityStatus::Open };
                history.push(pb::ImportedHistoryEntry {
                    stage: (*next).to_owned(),
                    status: status as i32,
                    occurred_at: timestamp(leaves_at),
                    actor: owner.clone(),
                    ..Default::default()
                });
                entered = leaves_at;
            } else {
                history.push(pb::ImportedHistoryEntry {
                    stage: stages[position - 1].to_owned(),
                    status: pb::OpportunityStatus::Leaked as i32,
                    occurred_at: timestamp(leaves_at),
                    actor: owner.clone(),
                    reason: "no response".to_owned(),
                    ..Default::default()
                });
                break;
            }
        }
        let external_id = format!("known-{index}");
        opportunities.push(pb::ImportedOpportunity {
            pipeline: "sales".to_owned(),
            external_id: external_id.clone(),
            title: format!("Lead {index}"),
            account: format!("Account {}", index % 40),
            owner,
            amount: Some(pb::Money {
                currency_code: "USD".to_owned(),
                amount_minor: 100_000 + (index as i64 % 7) * 50_000,
            }),
            source: source.to_owned(),
            attributes: [("industry".to_owned(), ["retail", "health", "tech"][index as usize % 3].to_owned())].into(),
            history,
            activities,
        });
        truths.push(Truth { external_id, cold_call, idle });
    }
    (opportunities, truths)
}

/// Imports through the client-streaming RPC, in batches of 250.
pub async fn import(
    client: &mut PipelineServiceClient<Channel>,
    opportunities: Vec<pb::ImportedOpportunity>,
) -> pb::ImportOpportunitiesResponse {
    let batches: Vec<pb::ImportOpportunitiesRequest> = opportunities
        .chunks(250)
        .map(|chunk| pb::ImportOpportunitiesRequest { opportunities: chunk.to_vec() })
        .collect();
    let response = client.import_opportunities(tokio_stream::iter(batches)).await.expect("import succeeds");
    let summary = response.into_inner();
    assert!(summary.rejections.is_empty(), "the generator writes valid history: {:?}", summary.rejections.first());
    summary
}
