//! `funnel.v1.PipelineService`: each RPC validates and converts the request,
//! calls the store, and converts the result back.

use funnel_domain::PipelineDef;
use funnel_domain::{Command, limits};
use funnel_proto::v1::{self as pb, pipeline_service_server::PipelineService};
use funnel_store::{NewActivity, NewOpportunity, OpportunityFilter, OpportunityPatch, StageCommand, Store};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{self, OwnerFilter, Scope};
use crate::convert::{self as c, Checked};
use crate::error::{domain_status, invalid_argument, store_status};
use crate::import::import_stream;
use crate::{analytics, watch};

/// Metadata key naming who makes a change, recorded in the history.
pub const ACTOR_METADATA: &str = "x-funnel-actor";

pub struct PipelineApi {
    store: Store,
    /// Turns true when the server shuts down; WatchEvents streams end then.
    watchers_stopping: tokio::sync::watch::Receiver<bool>,
}

impl PipelineApi {
    pub fn new(store: Store) -> Self {
        // Never signalled unless `stop_watchers_on` replaces it.
        let (_, watchers_stopping) = tokio::sync::watch::channel(false);
        Self { store, watchers_stopping }
    }

    /// Ends WatchEvents streams once `stopping` turns true.
    pub fn stop_watchers_on(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.watchers_stopping = stopping;
        self
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn actor<T>(request: &Request<T>) -> Checked<String> {
    // With authentication on, the principal is the actor; the metadata
    // names one only in open (dev) mode.
    if let Some(principal) = auth::principal(request) {
        return Ok(principal.name.clone());
    }
    let Some(value) = request.metadata().get(ACTOR_METADATA) else { return Ok("anonymous".to_owned()) };
    let value = value.to_str().map_err(|_| invalid_argument(ACTOR_METADATA, "must be printable ASCII"))?;
    c::required_text(ACTOR_METADATA, value.to_owned(), limits::MAX_SHORT_TEXT)
}

fn mask_paths(mask: Option<prost_types::FieldMask>, allowed: &[&str]) -> Checked<Vec<String>> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid_argument(
            "update_mask",
            &format!("is required: name the fields to change ({})", allowed.join(", ")),
        ));
    }
    for path in &paths {
        if !allowed.contains(&path.as_str()) {
            return Err(invalid_argument(
                "update_mask",
                &format!("{path:?} cannot be updated; allowed: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(paths)
}

#[tonic::async_trait]
impl PipelineService for PipelineApi {
    async fn create_pipeline(&self, request: Request<pb::CreatePipelineRequest>) -> Reply<pb::Pipeline> {
        let pb::CreatePipelineRequest { name, display_name, stages, request_id } = request.into_inner();
        let name = c::pipeline_name("name", &name)?;
        let display_name = c::text("display_name", display_name, limits::MAX_SHORT_TEXT)?;
        let def = PipelineDef::new(name, display_name, c::stages("stages", stages)?).map_err(domain_status)?;
        let request_id = c::optional_id_text("request_id", request_id)?;
        let created = self.store.create_pipeline(def, request_id).await.map_err(store_status)?;
        Ok(Response::new(c::pipeline_to_pb(created)))
    }

    async fn get_pipeline(&self, request: Request<pb::GetPipelineRequest>) -> Reply<pb::Pipeline> {
        let pb::GetPipelineRequest { name } = request.into_inner();
        let name = c::pipeline_name("name", &name)?;
        let pipeline = self.store.get_pipeline(&name).await.map_err(store_status)?;
        Ok(Response::new(c::pipeline_to_pb(pipeline)))
    }

    async fn list_pipelines(&self, request: Request<pb::ListPipelinesRequest>) -> Reply<pb::ListPipelinesResponse> {
        let pb::ListPipelinesRequest { page_size, page_token } = request.into_inner();
        let page = self.store.list_pipelines(c::page_size(page_size)?, &page_token).await.map_err(store_status)?;
        let pipelines = page.items.into_iter().map(c::pipeline_to_pb).collect();
        Ok(Response::new(pb::ListPipelinesResponse { pipelines, next_page_token: page.next_page_token }))
    }

    async fn update_pipeline(&self, request: Request<pb::UpdatePipelineRequest>) -> Reply<pb::Pipeline> {
        let pb::UpdatePipelineRequest { name, display_name, stages, update_mask, etag } = request.into_inner();
        let name = c::pipeline_name("name", &name)?;
        let paths = mask_paths(update_mask, &["display_name", "stages"])?;
        let display_name = paths.iter().any(|path| path == "display_name").then_some(display_name);
        let stages = match paths.iter().any(|path| path == "stages") {
            true => Some(c::stages("stages", stages)?),
            false => None,
        };
        let expected_version = c::etag("etag", &etag)?;
        let updated =
            self.store.update_pipeline(&name, display_name, stages, expected_version).await.map_err(store_status)?;
        Ok(Response::new(c::pipeline_to_pb(updated)))
    }

    async fn create_opportunity(&self, request: Request<pb::CreateOpportunityRequest>) -> Reply<pb::Opportunity> {
        let actor = actor(&request)?;
        let scope = Scope::of(&request);
        let pb::CreateOpportunityRequest {
            pipeline,
            stage,
            title,
            account,
            owner,
            amount,
            source,
            external_id,
            attributes,
            occurred_at,
            request_id,
            note,
        } = request.into_inner();
        let new = NewOpportunity {
            pipeline: c::pipeline_name("pipeline", &pipeline)?,
            stage: c::optional_stage("stage", &stage)?,
            title: c::required_text("title", title, limits::MAX_SHORT_TEXT)?,
            account: c::text("account", account, limits::MAX_SHORT_TEXT)?,
            owner: c::required_text("owner", owner, limits::MAX_SHORT_TEXT)?,
            amount: c::money("amount", amount)?,
            source: c::text("source", source, limits::MAX_SHORT_TEXT)?,
            external_id: c::optional_id_text("external_id", external_id)?,
            attributes: c::attributes(attributes)?,
            occurred_at: c::optional_time("occurred_at", occurred_at.as_ref())?,
            request_id: c::optional_id_text("request_id", request_id)?,
            actor,
            note: c::text("note", note, limits::MAX_LONG_TEXT)?,
        };
        scope.ensure_may_assign("owner", &new.owner)?;
        let created = self.store.create_opportunity(new).await.map_err(store_status)?;
        Ok(Response::new(c::opportunity_to_pb(created)))
    }

    async fn get_opportunity(&self, request: Request<pb::GetOpportunityRequest>) -> Reply<pb::Opportunity> {
        let scope = Scope::of(&request);
        let pb::GetOpportunityRequest { id } = request.into_inner();
        let id = c::opportunity_id("id", &id)?;
        let found = self.store.get_opportunity(id).await.map_err(store_status)?;
        scope.ensure_owner("opportunity", id, &found.owner)?;
        Ok(Response::new(c::opportunity_to_pb(found)))
    }

    async fn list_opportunities(
        &self,
        request: Request<pb::ListOpportunitiesRequest>,
    ) -> Reply<pb::ListOpportunitiesResponse> {
        let scope = Scope::of(&request);
        let pb::ListOpportunitiesRequest { pipeline, stage, status, owner, page_size, page_token } =
            request.into_inner();
        let mut filter = OpportunityFilter {
            pipeline: if pipeline.is_empty() { None } else { Some(c::pipeline_name("pipeline", &pipeline)?) },
            stage: c::optional_stage("stage", &stage)?,
            status: c::status_filter(status)?,
            owner: (!owner.is_empty()).then(|| c::text("owner", owner, limits::MAX_SHORT_TEXT)).transpose()?,
        };
        if filter.stage.is_some() && filter.pipeline.is_none() {
            return Err(invalid_argument("stage", "needs pipeline: stage keys are per pipeline"));
        }
        let OwnerFilter::Owner(owner) = scope.owner_filter(filter.owner.take()) else {
            return Ok(Response::new(pb::ListOpportunitiesResponse::default()));
        };
        filter.owner = owner;
        let page = self
            .store
            .list_opportunities(&filter, c::page_size(page_size)?, &page_token)
            .await
            .map_err(store_status)?;
        let opportunities = page.items.into_iter().map(c::opportunity_to_pb).collect();
        Ok(Response::new(pb::ListOpportunitiesResponse { opportunities, next_page_token: page.next_page_token }))
    }

    async fn update_opportunity(&self, request: Request<pb::UpdateOpportunityRequest>) -> Reply<pb::Opportunity> {
        let scope = Scope::of(&request);
        let pb::UpdateOpportunityRequest { opportunity, update_mask } = request.into_inner();
        let Some(opportunity) = opportunity else {
            return Err(invalid_argument("opportunity", "is required"));
        };
        let allowed = ["title", "account", "owner", "amount", "source", "external_id", "attributes"];
        let paths = mask_paths(update_mask, &allowed)?;
        let id = c::opportunity_id("opportunity.id", &opportunity.id)?;
        let expected_version = c::etag("opportunity.etag", &opportunity.etag)?;
        let mut patch = OpportunityPatch::default();
        for path in &paths {
            match path.as_str() {
                "title" => {
                    patch.title =
                        Some(c::required_text("opportunity.title", opportunity.title.clone(), limits::MAX_SHORT_TEXT)?)
                }
                "account" => {
                    patch.account =
                        Some(c::text("opportunity.account", opportunity.account.clone(), limits::MAX_SHORT_TEXT)?)
                }
                "owner" => {
                    patch.owner =
                        Some(c::required_text("opportunity.owner", opportunity.owner.clone(), limits::MAX_SHORT_TEXT)?)
                }
                "amount" => patch.amount = Some(c::money("opportunity.amount", opportunity.amount.clone())?),
                "source" => {
                    patch.source =
                        Some(c::text("opportunity.source", opportunity.source.clone(), limits::MAX_SHORT_TEXT)?)
                }
                "external_id" => {
                    patch.external_id =
                        Some(c::optional_id_text("opportunity.external_id", opportunity.external_id.clone())?)
                }
                _ => patch.attributes = Some(c::attributes(opportunity.attributes.clone())?),
            }
        }
        scope.ensure_visible(&self.store, id, "opportunity").await?;
        if let Some(owner) = &patch.owner {
            scope.ensure_may_assign("opportunity.owner", owner)?;
        }
        let updated = self.store.update_opportunity(id, patch, expected_version).await.map_err(store_status)?;
        Ok(Response::new(c::opportunity_to_pb(updated)))
    }

    async fn move_opportunity(&self, request: Request<pb::MoveOpportunityRequest>) -> Reply<pb::Opportunity> {
        let actor = actor(&request)?;
        let scope = Scope::of(&request);
        let pb::MoveOpportunityRequest { id, stage, etag, occurred_at, note } = request.into_inner();
        let command = Command::Move { to: c::stage_key("stage", &stage)? };
        self.change_stage(&scope, &id, command, &etag, occurred_at, actor, note).await
    }

    async fn leak_opportunity(&self, request: Request<pb::LeakOpportunityRequest>) -> Reply<pb::Opportunity> {
        let actor = actor(&request)?;
        let scope = Scope::of(&request);
        let pb::LeakOpportunityRequest { id, reason, etag, occurred_at, note } = request.into_inner();
        let command = Command::Leak { reason: c::required_text("reason", reason, limits::MAX_LONG_TEXT)? };
        self.change_stage(&scope, &id, command, &etag, occurred_at, actor, note).await
    }

    async fn reopen_opportunity(&self, request: Request<pb::ReopenOpportunityRequest>) -> Reply<pb::Opportunity> {
        let actor = actor(&request)?;
        let scope = Scope::of(&request);
        let pb::ReopenOpportunityRequest { id, stage, etag, occurred_at, note } = request.into_inner();
        let command = Command::Reopen { stage: c::optional_stage("stage", &stage)? };
        self.change_stage(&scope, &id, command, &etag, occurred_at, actor, note).await
    }

    async fn log_activity(&self, request: Request<pb::LogActivityRequest>) -> Reply<pb::Activity> {
        let actor = actor(&request)?;
        let scope = Scope::of(&request);
        let pb::LogActivityRequest { opportunity_id, kind, occurred_at, note, request_id } = request.into_inner();
        let new = NewActivity {
            opportunity_id: c::opportunity_id("opportunity_id", &opportunity_id)?,
            kind: c::activity_kind("kind", kind)?,
            occurred_at: c::optional_time("occurred_at", occurred_at.as_ref())?,
            actor,
            note: c::text("note", note, limits::MAX_LONG_TEXT)?,
            request_id: c::optional_id_text("request_id", request_id)?,
        };
        scope.ensure_visible(&self.store, new.opportunity_id, "opportunity").await?;
        let logged = self.store.log_activity(new).await.map_err(store_status)?;
        Ok(Response::new(c::activity_to_pb(logged)))
    }

    async fn list_activities(&self, request: Request<pb::ListActivitiesRequest>) -> Reply<pb::ListActivitiesResponse> {
        let scope = Scope::of(&request);
        let pb::ListActivitiesRequest { opportunity_id, page_size, page_token } = request.into_inner();
        let id = c::opportunity_id("opportunity_id", &opportunity_id)?;
        let page_size = c::page_size(page_size)?;
        scope.ensure_visible(&self.store, id, "opportunity").await?;
        let page = self.store.list_activities(id, page_size, &page_token).await.map_err(store_status)?;
        let activities = page.items.into_iter().map(c::activity_to_pb).collect();
        Ok(Response::new(pb::ListActivitiesResponse { activities, next_page_token: page.next_page_token }))
    }

    async fn list_stage_history(
        &self,
        request: Request<pb::ListStageHistoryRequest>,
    ) -> Reply<pb::ListStageHistoryResponse> {
        let scope = Scope::of(&request);
        let pb::ListStageHistoryRequest { opportunity_id, page_size, page_token } = request.into_inner();
        let id = c::opportunity_id("opportunity_id", &opportunity_id)?;
        let page_size = c::page_size(page_size)?;
        scope.ensure_visible(&self.store, id, "opportunity").await?;
        let page = self.store.list_history(id, page_size, &page_token).await.map_err(store_status)?;
        let transitions = page.items.into_iter().map(c::history_to_pb).collect();
        Ok(Response::new(pb::ListStageHistoryResponse { transitions, next_page_token: page.next_page_token }))
    }

    async fn import_opportunities(
        &self,
        request: Request<Streaming<pb::ImportOpportunitiesRequest>>,
    ) -> Reply<pb::ImportOpportunitiesResponse> {
        let summary = import_stream(&self.store, request.into_inner()).await?;
        Ok(Response::new(summary))
    }

    async fn get_funnel_report(&self, request: Request<pb::GetFunnelReportRequest>) -> Reply<pb::FunnelReport> {
        let query = analytics::report_query(&self.store, request.into_inner()).await?;
        let figures = self.store.funnel_report(&query).await.map_err(store_status)?;
        Ok(Response::new(analytics::report_to_pb(&query, figures)))
    }

    async fn get_movement_stats(
        &self,
        request: Request<pb::GetMovementStatsRequest>,
    ) -> Reply<pb::GetMovementStatsResponse> {
        let query = analytics::movement_query(request.into_inner())?;
        let lines = self.store.movement_stats(&query).await.map_err(store_status)?;
        Ok(Response::new(analytics::movement_to_pb(&query, lines)))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(&self, request: Request<pb::WatchEventsRequest>) -> Reply<Self::WatchEventsStream> {
        let (after, filter) = watch::start(&self.store, request.into_inner()).await?;
        Ok(Response::new(watch::spawn(self.store.clone(), after, filter, self.watchers_stopping.clone())))
    }
}

impl PipelineApi {
    #[allow(clippy::too_many_arguments)]
    async fn change_stage(
        &self,
        scope: &Scope,
        id: &str,
        command: Command,
        etag: &str,
        occurred_at: Option<prost_types::Timestamp>,
        actor: String,
        note: String,
    ) -> Reply<pb::Opportunity> {
        let id = c::opportunity_id("id", id)?;
        let command = StageCommand {
            command,
            expected_version: c::etag("etag", etag)?,
            occurred_at: c::optional_time("occurred_at", occurred_at.as_ref())?,
            actor,
            note: c::text("note", note, limits::MAX_LONG_TEXT)?,
        };
        scope.ensure_visible(&self.store, id, "opportunity").await?;
        let changed = self.store.change_stage(id, command).await.map_err(store_status)?;
        Ok(Response::new(c::opportunity_to_pb(changed)))
    }
}
