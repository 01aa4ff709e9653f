//! What reps type every day: `leads`, `show`, `move`, `leak`, `won`,
//! `reopen` and `log`.

use funnel_proto::v1 as pb;
use serde::Serialize;
use tonic::Code;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Report};
use crate::views::{ActivityView, OpportunityView, ScoreView, TransitionView};

/// Largest page the service serves.
const MAX_PAGE_SIZE: i32 = 1_000;

/// `funnel leads`: open leads, riskiest first.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LeadsArgs {
    /// Only this pipeline.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Only leads owned by this rep.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only leads in this stage.
    #[arg(long)]
    pub stage: Option<String>,
    /// Only leads flagged as leaking.
    #[arg(long)]
    pub flagged: bool,
    /// At most this many leads (up to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: i32,
}

/// An opportunity id, the argument of most rep commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The opportunity's id.
    pub id: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MoveArgs {
    /// The opportunity's id.
    pub id: String,
    /// Key of the stage to move it to; the last stage means won.
    pub stage: String,
    /// Note for the history.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LeakArgs {
    /// The opportunity's id.
    pub id: String,
    /// Why it leaked (no budget, lost to competitor, no response, ...).
    #[arg(long)]
    pub reason: String,
    /// Note for the history.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WonArgs {
    /// The opportunity's id.
    pub id: String,
    /// Note for the history.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReopenArgs {
    /// The opportunity's id.
    pub id: String,
    /// Stage to reopen in; by default where it leaked, or the stage it was won from.
    #[arg(long)]
    pub stage: Option<String>,
    /// Note for the history.
    #[arg(long)]
    pub note: Option<String>,
}

/// Kinds of activity a rep logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActivityKindArg {
    Call,
    Email,
    Meeting,
    Note,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// The opportunity's id.
    pub id: String,
    /// What happened.
    #[arg(value_enum)]
    pub kind: ActivityKindArg,
    /// Free text.
    #[arg(long)]
    pub note: Option<String>,
}

/// Scores of open leads, riskiest first.
#[derive(Debug, Clone, Serialize)]
pub struct LeadsReport {
    pub leads: Vec<ScoreView>,
    /// Non-empty when more leads match than were listed.
    pub next_page_token: String,
}

/// One opportunity with its history, activities and latest score.
#[derive(Debug, Clone, Serialize)]
pub struct ShowReport {
    pub opportunity: OpportunityView,
    pub history: Vec<TransitionView>,
    pub activities: Vec<ActivityView>,
    /// `None` when it has not been scored (or no scorer is running).
    pub score: Option<ScoreView>,
}

/// An opportunity after a change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// What was done: `moved`, `leaked`, `won`, `reopened`.
    pub action: &'static str,
    pub opportunity: OpportunityView,
}

/// An activity just logged.
#[derive(Debug, Clone, Serialize)]
pub struct ActivityReport {
    pub activity: ActivityView,
}

pub async fn leads(client: &Client, args: &LeadsArgs) -> Result<LeadsReport> {
    let request = pb::ListLeadScoresRequest {
        pipeline: args.pipeline.clone().unwrap_or_default(),
        owner: args.owner.clone().unwrap_or_default(),
        stage: args.stage.clone().unwrap_or_default(),
        flagged_only: args.flagged,
        min_probability: None,
        max_probability: None,
        page_size: args.limit.clamp(1, MAX_PAGE_SIZE),
        page_token: String::new(),
    };
    let response = client.scoring().list_lead_scores(request).await.map_err(CliError::rpc("ListLeadScores"))?;
    let pb::ListLeadScoresResponse { scores, next_page_token } = response.into_inner();
    Ok(LeadsReport { leads: scores.into_iter().map(ScoreView::from).collect(), next_page_token })
}

pub async fn show(client: &Client, args: &ShowArgs) -> Result<ShowReport> {
    let opportunity = get_opportunity(client, &args.id).await?;
    let history = stage_history(client, &args.id).await?;
    let activities = activities(client, &args.id).await?;
    let score = latest_score(client, &args.id).await?;
    Ok(ShowReport { opportunity: opportunity.into(), history, activities, score })
}

pub async fn move_to(client: &Client, args: &MoveArgs) -> Result<ChangeReport> {
    let request = pb::MoveOpportunityRequest {
        id: args.id.clone(),
        stage: args.stage.clone(),
        etag: String::new(),
        occurred_at: None,
        note: args.note.clone().unwrap_or_default(),
    };
    let moved = client.pipeline().move_opportunity(request).await.map_err(CliError::rpc("MoveOpportunity"))?;
    Ok(ChangeReport { action: "moved", opportunity: moved.into_inner().into() })
}

pub async fn leak(client: &Client, args: &LeakArgs) -> Result<ChangeReport> {
    let request = pb::LeakOpportunityRequest {
        id: args.id.clone(),
        reason: args.reason.clone(),
        etag: String::new(),
        occurred_at: None,
        note: args.note.clone().unwrap_or_default(),
    };
    let leaked = client.pipeline().leak_opportunity(request).await.map_err(CliError::rpc("LeakOpportunity"))?;
    Ok(ChangeReport { action: "leaked", opportunity: leaked.into_inner().into() })
}

/// Moves into the pipeline's last stage. The etag of the read guards
/// against someone else changing it in between.
pub async fn won(client: &Client, args: &WonArgs) -> Result<ChangeReport> {
    let opportunity = get_opportunity(client, &args.id).await?;
    let request = pb::GetPipelineRequest { name: opportunity.pipeline.clone() };
    let pipeline = client.pipeline().get_pipeline(request).await.map_err(CliError::rpc("GetPipeline"))?.into_inner();
    let Some(won_stage) = pipeline.stages.last() else {
        return Err(CliError::invalid("pipeline", format!("{} has no stages", pipeline.name)));
    };
    let request = pb::MoveOpportunityRequest {
        id: args.id.clone(),
        stage: won_stage.key.clone(),
        etag: opportunity.etag,
        occurred_at: None,
        note: args.note.clone().unwrap_or_default(),
    };
    let moved = client.pipeline().move_opportunity(request).await.map_err(CliError::rpc("MoveOpportunity"))?;
    Ok(ChangeReport { action: "won", opportunity: moved.into_inner().into() })
}

pub async fn reopen(client: &Client, args: &ReopenArgs) -> Result<ChangeReport> {
    let request = pb::ReopenOpportunityRequest {
        id: args.id.clone(),
        stage: args.stage.clone().unwrap_or_default(),
        etag: String::new(),
        occurred_at: None,
        note: args.note.clone().unwrap_or_default(),
    };
    let reopened = client.pipeline().reopen_opportunity(request).await.map_err(CliError::rpc("ReopenOpportunity"))?;
    Ok(ChangeReport { action: "reopened", opportunity: reopened.into_inner().into() })
}

pub async fn log(client: &Client, args: &LogArgs) -> Result<ActivityReport> {
    let kind = match args.kind {
        ActivityKindArg::Call => pb::ActivityKind::Call,
        ActivityKindArg::Email => pb::ActivityKind::Email,
        ActivityKindArg::Meeting => pb::ActivityKind::Meeting,
        ActivityKindArg::Note => pb::ActivityKind::Note,
    };
    let request = pb::LogActivityRequest {
        opportunity_id: args.id.clone(),
        kind: kind as i32,
        occurred_at: None,
        note: args.note.clone().unwrap_or_default(),
        request_id: String::new(),
    };
    let logged = client.pipeline().log_activity(request).await.map_err(CliError::rpc("LogActivity"))?;
    Ok(ActivityReport { activity: logged.into_inner().into() })
}

async fn get_opportunity(client: &Client, id: &str) -> Result<pb::Opportunity> {
    let request = pb::GetOpportunityRequest { id: id.to_owned() };
    let response = client.pipeline().get_opportunity(request).await.map_err(CliError::rpc("GetOpportunity"))?;
    Ok(response.into_inner())
}

async fn stage_history(client: &Client, id: &str) -> Result<Vec<TransitionView>> {
    let mut history = Vec::new();
    let mut page_token = String::new();
    loop {
        let request =
            pb::ListStageHistoryRequest { opportunity_id: id.to_owned(), page_size: MAX_PAGE_SIZE, page_token };
        let response =
            client.pipeline().list_stage_history(request).await.map_err(CliError::rpc("ListStageHistory"))?;
        let pb::ListStageHistoryResponse { transitions, next_page_token } = response.into_inner();
        history.extend(transitions.into_iter().map(TransitionView::from));
        if next_page_token.is_empty() {
            return Ok(history);
        }
        page_token = next_page_token;
    }
}

async fn activities(client: &Client, id: &str) -> Result<Vec<ActivityView>> {
    let mut activities = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListActivitiesRequest { opportunity_id: id.to_owned(), page_size: MAX_PAGE_SIZE, page_token };
        let response = client.pipeline().list_activities(request).await.map_err(CliError::rpc("ListActivities"))?;
        let pb::ListActivitiesResponse { activities: page, next_page_token } = response.into_inner();
        activities.extend(page.into_iter().map(ActivityView::from));
        if next_page_token.is_empty() {
            return Ok(activities);
        }
        page_token = next_page_token;
    }
}

/// The latest score; `None` when there is none or no scorer serves scores.
async fn latest_score(client: &Client, id: &str) -> Result<Option<ScoreView>> {
    let request = pb::GetLeadScoreRequest { opportunity_id: id.to_owned(), as_of: None };
    match client.scoring().get_lead_score(request).await {
        Ok(score) => Ok(Some(score.into_inner().into())),
        Err(status) if matches!(status.code(), Code::NotFound | Code::Unimplemented) => Ok(None),
        Err(status) => Err(CliError::Rpc { rpc: "GetLeadScore", status }),
    }
}

impl Report for LeadsReport {
    fn human(&self) -> String {
        if self.leads.is_empty() {
            return "no scored open leads match".to_owned();
        }
        let header = ["id", "title", "owner", "stage", "days in stage", "p(advance)", "leaking", "top reason"];
        let mut table = output::table(&header, &[4, 5]);
        for lead in &self.leads {
            table.add_row([
                lead.opportunity_id.clone(),
                lead.title.clone(),
                lead.owner.clone(),
                lead.stage.clone(),
                format!("{:.0}", lead.days_in_stage),
                output::percent(lead.p_advance),
                if lead.leak_flag { "LEAK".to_owned() } else { String::new() },
                lead.top_reason(),
            ]);
        }
        let mut text = table.to_string();
        if !self.next_page_token.is_empty() {
            text.push_str("\nmore leads match; raise --limit or narrow the filters");
        }
        text
    }
}

impl Report for ShowReport {
    fn human(&self) -> String {
        let mut sections = vec![output::details_table(&self.opportunity.detail_rows()).to_string()];
        let mut history = output::table(&["#", "when", "change", "stage", "status", "by", "reason / note"], &[0]);
        for row in &self.history {
            let stage = if row.from_stage.is_empty() || row.from_stage == row.to_stage {
                row.to_stage.clone()
            } else {
                format!("{} -> {}", row.from_stage, row.to_stage)
            };
            let remark = [row.reason.as_str(), row.note.as_str()]
                .into_iter()
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>();
            history.add_row([
                row.sequence.to_string(),
                output::time(row.occurred_at),
                row.kind.clone(),
                stage,
                row.to_status.clone(),
                row.actor.clone(),
                remark.join("; "),
            ]);
        }
        sections.push(format!("history:\n{history}"));
        if self.activities.is_empty() {
            sections.push("activities: none".to_owned());
        } else {
            let mut activities = output::table(&["when", "kind", "by", "note"], &[]);
            for activity in &self.activities {
                activities.add_row([
                    output::time(activity.occurred_at),
                    activity.kind.clone(),
                    activity.actor.clone(),
                    activity.note.clone(),
                ]);
            }
            sections.push(format!("activities:\n{activities}"));
        }
        sections.push(score_section(self.score.as_ref()));
        sections.join("\n\n")
    }
}

fn score_section(score: Option<&ScoreView>) -> String {
    let Some(score) = score else { return "score: not scored yet".to_owned() };
    let leaking = if score.leak_flag { ", flagged as leaking" } else { "" };
    let mut text = format!(
        "score: p(advance) {}, p(win) ~{}{leaking} (model v{}, {}; {:.0} days in stage)",
        output::percent(score.p_advance),
        output::percent(score.p_win_estimate),
        score.model_version,
        output::time(score.scored_at),
        score.days_in_stage
    );
    if !score.reason_codes.is_empty() {
        text.push_str(&format!("\nreasons: {}", score.reason_codes.join(", ")));
    }
    let mut factors = output::table(&["direction", "feature", "value", "contribution"], &[3]);
    for (direction, list) in [("down", &score.factors_down), ("up", &score.factors_up)] {
        for factor in list {
            factors.add_row([
                direction.to_owned(),
                factor.feature.clone(),
                factor.value.clone(),
                format!("{:+.3}", factor.contribution),
            ]);
        }
    }
    if !score.factors_down.is_empty() || !score.factors_up.is_empty() {
        text.push_str(&format!("\n{factors}"));
    }
    text
}

impl Report for ChangeReport {
    fn human(&self) -> String {
        format!("{}: {}", self.action, self.opportunity.summary_line())
    }
}

impl Report for ActivityReport {
    fn human(&self) -> String {
        let activity = &self.activity;
        format!("logged {} on {} at {}", activity.kind, activity.opportunity_id, output::time(activity.occurred_at))
    }
}
