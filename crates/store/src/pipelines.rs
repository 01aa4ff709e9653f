use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use funnel_domain::{DomainError, PipelineDef, PipelineName, StageDef, StageKey, limits};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use crate::entity::{opportunity, pipeline, stage};
use crate::events::{EventKind, new as new_event};
use crate::migration_visits::RECOMPUTE_FURTHEST_STAGE;
use crate::model::{Page, Pipeline};
use crate::time::{from_micros, to_micros};
use crate::{Result, Store, StoreError, page};

impl Store {
    /// Creates a pipeline; with a `request_id` seen before, returns the
    /// pipeline that request created.
    pub async fn create_pipeline(&self, def: PipelineDef, request_id: Option<String>) -> Result<Pipeline> {
        let _writer = self.write_lock().await;
        if let Some(request_id) = &request_id
            && let Some(existing) = pipeline::Entity::find()
                .filter(pipeline::Column::RequestId.eq(request_id.as_str()))
                .one(&self.db)
                .await?
        {
            return load(&self.db, &existing.name).await;
        }
        let txn = self.begin_write().await?;
        let now = to_micros(Utc::now());
        let row = pipeline::ActiveModel {
            name: Set(def.name.to_string()),
            display_name: Set(def.display_name.clone()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            request_id: Set(request_id),
        };
        if let Err(error) = pipeline::Entity::insert(row).exec_without_returning(&txn).await {
            return Err(match StoreError::from(error) {
                StoreError::AlreadyExists(_) => {
                    StoreError::AlreadyExists(format!("pipeline {} already exists", def.name))
                }
                other => other,
            });
        }
        insert_stages(&txn, &def.name, def.stages()).await?;
        let created = load(&txn, def.name.as_str()).await?;
        let event = new_event::pipeline_changed(&created, EventKind::PipelineCreated);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(created)
    }

    pub async fn get_pipeline(&self, name: &PipelineName) -> Result<Pipeline> {
        load(&self.db, name.as_str()).await
    }

    /// Lists pipelines by name.
    pub async fn list_pipelines(&self, page_size: u32, page_token: &str) -> Result<Page<Pipeline>> {
        // Only a pipeline name may reach the query, whatever the token says.
        let after = match page::decode("pipelines", page_token)? {
            Some(key) => Some(
                PipelineName::parse("page_token", &key)
                    .map_err(|_| DomainError::invalid("page_token", "is damaged"))?
                    .to_string(),
            ),
            None => None,
        };
        let mut query = pipeline::Entity::find().order_by_asc(pipeline::Column::Name);
        if let Some(after) = &after {
            query = query.filter(pipeline::Column::Name.gt(after.as_str()));
        }
        let rows = query.limit(u64::from(page_size) + 1).all(&self.db).await?;
        let has_more = rows.len() > page_size as usize;
        let mut items = Vec::new();
        for row in rows.into_iter().take(page_size as usize) {
            items.push(load(&self.db, &row.name).await?);
        }
        let next_page_token = match items.last() {
            Some(last) if has_more => page::encode("pipelines", last.def.name.as_str()),
            _ => String::new(),
        };
        Ok(Page { items, next_page_token })
    }

    /// Changes a pipeline's display name and/or stages. Removing or
    /// reordering a stage that holds open opportunities, or changing the won
    /// stage while any opportunity is won, is refused.
    pub async fn update_pipeline(
        &self,
        name: &PipelineName,
        display_name: Option<String>,
        stages: Option<Vec<StageDef>>,
        expected_version: Option<i64>,
    ) -> Result<Pipeline> {
        let _writer = self.write_lock().await;
        let txn = self.begin_write().await?;
        let current = load(&txn, name.as_str()).await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(StoreError::Conflict(format!(
                "pipeline {name} changed since it was read (etag {expected}, now {}); read it again",
                current.version
            )));
        }
        let mut def = current.def.clone();
        if let Some(display_name) = display_name {
            limits::check_text("display_name", &display_name, limits::MAX_SHORT_TEXT)?;
            def.display_name = if display_name.trim().is_empty() { name.to_string() } else { display_name };
        }
        if let Some(stages) = stages {
            let change = current.def.stage_change(&stages);
            let mut touched: Vec<&StageKey> = change.removed.iter().chain(change.reordered.iter()).collect();
            touched.dedup();
            let order_changed = !touched.is_empty();
            for key in touched {
                let open = count_in_stage(&txn, name, key, Some("open")).await?;
                if open > 0 {
                    return Err(DomainError::FailedPrecondition(format!(
                        "stage {key} holds {open} open opportunities: move them out before removing or reordering it"
                    ))
                    .into());
                }
            }
            if change.won_stage_changed {
                let won = count_in_stage(&txn, name, current.def.won_stage(), Some("won")).await?;
                if won > 0 {
                    return Err(DomainError::FailedPrecondition(format!(
                        "{won} opportunities were won in stage {}: it must stay the last stage",
                        current.def.won_stage()
                    ))
                    .into());
                }
            }
            def = def.with_stages(stages)?;
            stage::Entity::delete_many().filter(stage::Column::Pipeline.eq(name.as_str())).exec(&txn).await?;
            insert_stages(&txn, name, def.stages()).await?;
            if order_changed {
                // The furthest stage is by order: recompute it under the new one.
                let recompute = Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    RECOMPUTE_FURTHEST_STAGE,
                    [name.as_str().into()],
                );
                txn.execute_raw(recompute).await?;
            }
        }
        let updated = pipeline::Entity::update_many()
            .col_expr(pipeline::Column::DisplayName, Expr::value(def.display_name.clone()))
            .col_expr(pipeline::Column::Version, Expr::value(current.version + 1))
            .col_expr(pipeline::Column::UpdatedAt, Expr::value(to_micros(Utc::now())))
            .filter(pipeline::Column::Name.eq(name.as_str()))
            .filter(pipeline::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Err(StoreError::Conflict(format!("pipeline {name} was changed concurrently; read it again")));
        }
        let result = load(&txn, name.as_str()).await?;
        let event = new_event::pipeline_changed(&result, EventKind::PipelineUpdated);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(result)
    }
}

async fn count_in_stage(
    db: &impl ConnectionTrait,
    pipeline_name: &PipelineName,
    key: &StageKey,
    status: Option<&str>,
) -> Result<u64> {
    let mut query = opportunity::Entity::find()
        .filter(opportunity::Column::Pipeline.eq(pipeline_name.as_str()))
        .filter(opportunity::Column::Stage.eq(key.as_str()));
    if let Some(status) = status {
        query = query.filter(opportunity::Column::Status.eq(status));
    }
    Ok(query.count(db).await?)
}

async fn insert_stages(db: &impl ConnectionTrait, name: &PipelineName, stages: &[StageDef]) -> Result<()> {
    let rows = stages.iter().enumerate().map(|(position, stage)| stage::ActiveModel {
        pipeline: Set(name.to_string()),
        key: Set(stage.key.to_string()),
        position: Set(position as i32),
        display_name: Set(stage.display_name.clone()),
        rot_after_days: Set(stage.rot_after_days.map(|days| days as i32)),
    });
    stage::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Loads a pipeline with its stages, in the caller's transaction if any.
pub(crate) async fn load(db: &impl ConnectionTrait, name: &str) -> Result<Pipeline> {
    let Some(row) = pipeline::Entity::find_by_id(name.to_owned()).one(db).await? else {
        return Err(StoreError::not_found("pipeline", name));
    };
    let stage_rows = stage::Entity::find()
        .filter(stage::Column::Pipeline.eq(name))
        .order_by_asc(stage::Column::Position)
        .all(db)
        .await?;
    let mut stages = Vec::with_capacity(stage_rows.len());
    for stage_row in stage_rows {
        stages.push(StageDef {
            key: StageKey::parse("stage", &stage_row.key).map_err(corrupt)?,
            display_name: stage_row.display_name,
            rot_after_days: stage_row.rot_after_days.and_then(|days| u32::try_from(days).ok()),
        });
    }
    let pipeline_name = PipelineName::parse("name", &row.name).map_err(corrupt)?;
    let def = PipelineDef::new(pipeline_name, row.display_name, stages).map_err(corrupt)?;
    Ok(Pipeline {
        def,
        version: row.version,
        created_at: from_micros(row.created_at),
        updated_at: from_micros(row.updated_at),
    })
}

/// Pipeline definitions by name, as of a version. A pipeline's stages change
/// only together with its version, so a stage change that reads the version
/// with its opportunity (one join) can skip reading the pipeline and its
/// stages: two of its round trips (issue 7, B1). One entry per pipeline.
#[derive(Default)]
pub(crate) struct PipelineCache(Mutex<HashMap<String, CachedPipeline>>);

/// What identifies a pipeline's definition: its version, and its creation
/// time in case a pipeline is ever dropped and created again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PipelineStamp {
    pub version: i64,
    pub created_at: i64,
}

struct CachedPipeline {
    stamp: PipelineStamp,
    def: Arc<PipelineDef>,
}

impl Store {
    /// The definition of pipeline `name` as of `stamp`, from the cache or
    /// read in the caller's transaction.
    pub(crate) async fn pipeline_def(
        &self,
        db: &impl ConnectionTrait,
        name: &str,
        stamp: PipelineStamp,
    ) -> Result<Arc<PipelineDef>> {
        let cache = &self.pipeline_cache.0;
        if let Some(cached) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(name)
            && cached.stamp == stamp
        {
            return Ok(cached.def.clone());
        }
        let loaded = load(db, name).await?;
        let def = Arc::new(loaded.def);
        let loaded_stamp = PipelineStamp { version: loaded.version, created_at: to_micros(loaded.created_at) };
        // Another writer may have changed it since `stamp` was read: cache
        // what was loaded, under the stamp it was loaded with.
        cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), CachedPipeline { stamp: loaded_stamp, def: def.clone() });
        Ok(def)
    }
}

/// A stored value that fails validation was not written by this code.
pub(crate) fn corrupt(error: DomainError) -> StoreError {
    StoreError::Internal(format!("stored data fails validation: {error}"))
}
