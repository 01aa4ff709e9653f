//! Tables of the scorer: the model registry, retraining jobs, the training
//! lease, and scores (current and append-only history).

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Models {
    Table,
    Version,
    Pipeline,
    Status,
    StatusReason,
    Trigger,
    CreatedAt,
    ActivatedAt,
    WindowStart,
    WindowEnd,
    AdvancedExamples,
    LeakedExamples,
    RocAuc,
    BaselineRocAuc,
    TrainingSeconds,
    Body,
}

#[derive(DeriveIden)]
enum RetrainJobs {
    Table,
    Id,
    Pipeline,
    State,
    Trigger,
    CreatedAt,
    StartedAt,
    FinishedAt,
    HeartbeatAt,
    Worker,
    ModelVersion,
    Message,
    Attempts,
    RequestId,
}

#[derive(DeriveIden)]
enum TrainingLeases {
    Table,
    Pipeline,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum CurrentScores {
    Table,
    OpportunityId,
}

#[derive(DeriveIden)]
enum ScoreHistory {
    Table,
    Id,
    OpportunityId,
    ScoredAt,
}

#[derive(DeriveIden)]
enum ScoreColumns {
    Pipeline,
    Stage,
    Owner,
    Title,
    ModelVersion,
    PAdvance,
    PWin,
    LeakFlag,
    ReasonCodes,
    Factors,
    DaysInStage,
    ScoredAt,
}

pub struct CreateScoringTables;

impl MigrationName for CreateScoringTables {
    fn name(&self) -> &str {
        "m0003_create_scoring_tables"
    }
}

/// Columns shared by current scores and score history.
fn score_columns(table: &mut TableCreateStatement) {
    table
        .col(ColumnDef::new(ScoreColumns::Pipeline).string_len(63).not_null())
        .col(ColumnDef::new(ScoreColumns::Stage).string_len(32).not_null())
        .col(ColumnDef::new(ScoreColumns::Owner).string().not_null())
        .col(ColumnDef::new(ScoreColumns::Title).string().not_null())
        .col(ColumnDef::new(ScoreColumns::ModelVersion).big_integer().not_null())
        .col(ColumnDef::new(ScoreColumns::PAdvance).double().not_null())
        .col(ColumnDef::new(ScoreColumns::PWin).double().not_null())
        .col(ColumnDef::new(ScoreColumns::LeakFlag).boolean().not_null())
        .col(ColumnDef::new(ScoreColumns::ReasonCodes).text().not_null())
        .col(ColumnDef::new(ScoreColumns::Factors).text().not_null())
        .col(ColumnDef::new(ScoreColumns::DaysInStage).double().not_null())
        .col(ColumnDef::new(ScoreColumns::ScoredAt).big_integer().not_null());
}

#[async_trait::async_trait]
impl MigrationTrait for CreateScoringTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Models::Table)
                    .col(ColumnDef::new(Models::Version).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Models::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(Models::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Models::StatusReason).text().not_null())
                    .col(ColumnDef::new(Models::Trigger).string_len(16).not_null())
                    .col(ColumnDef::new(Models::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Models::ActivatedAt).big_integer().null())
                    .col(ColumnDef::new(Models::WindowStart).big_integer().not_null())
                    .col(ColumnDef::new(Models::WindowEnd).big_integer().not_null())
                    .col(ColumnDef::new(Models::AdvancedExamples).big_integer().not_null())
                    .col(ColumnDef::new(Models::LeakedExamples).big_integer().not_null())
                    .col(ColumnDef::new(Models::RocAuc).double().null())
                    .col(ColumnDef::new(Models::BaselineRocAuc).double().null())
                    .col(ColumnDef::new(Models::TrainingSeconds).double().not_null())
                    .col(ColumnDef::new(Models::Body).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RetrainJobs::Table)
                    .col(ColumnDef::new(RetrainJobs::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(RetrainJobs::Pipeline).string_len(63).not_null())
                    .col(ColumnDef::new(RetrainJobs::State).string_len(16).not_null())
                    .col(ColumnDef::new(RetrainJobs::Trigger).string_len(16).not_null())
                    .col(ColumnDef::new(RetrainJobs::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(RetrainJobs::StartedAt).big_integer().null())
                    .col(ColumnDef::new(RetrainJobs::FinishedAt).big_integer().null())
                    .col(ColumnDef::new(RetrainJobs::HeartbeatAt).big_integer().null())
                    .col(ColumnDef::new(RetrainJobs::Worker).string().null())
                    .col(ColumnDef::new(RetrainJobs::ModelVersion).big_integer().null())
                    .col(ColumnDef::new(RetrainJobs::Message).text().not_null())
                    .col(ColumnDef::new(RetrainJobs::Attempts).integer().not_null())
                    .col(ColumnDef::new(RetrainJobs::RequestId).string().null().unique_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TrainingLeases::Table)
                    .col(ColumnDef::new(TrainingLeases::Pipeline).string_len(63).not_null().primary_key())
                    .col(ColumnDef::new(TrainingLeases::Holder).string().not_null())
                    .col(ColumnDef::new(TrainingLeases::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        let mut current = Table::create()
            .table(CurrentScores::Table)
            .col(ColumnDef::new(CurrentScores::OpportunityId).uuid().not_null().primary_key())
            .to_owned();
        score_columns(&mut current);
        manager.create_table(current).await?;
        let mut history = Table::create()
            .table(ScoreHistory::Table)
            .col(ColumnDef::new(ScoreHistory::Id).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(ScoreHistory::OpportunityId).uuid().not_null())
            .to_owned();
        score_columns(&mut history);
        manager.create_table(history).await?;

        let indexes = [
            Index::create()
                .name("ix_models_pipeline_status")
                .table(Models::Table)
                .col(Models::Pipeline)
                .col(Models::Status)
                .to_owned(),
            Index::create()
                .name("ix_retrain_jobs_state_created")
                .table(RetrainJobs::Table)
                .col(RetrainJobs::State)
                .col(RetrainJobs::CreatedAt)
                .to_owned(),
            Index::create()
                .name("ix_current_scores_p_advance")
                .table(CurrentScores::Table)
                .col(ScoreColumns::PAdvance)
                .col(CurrentScores::OpportunityId)
                .to_owned(),
            Index::create()
                .name("ix_score_history_opportunity_time")
                .table(ScoreHistory::Table)
                .col(ScoreHistory::OpportunityId)
                .col(ScoreHistory::ScoredAt)
                .to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }
}
