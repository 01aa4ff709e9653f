//! sea-orm entities, one module per table. Rows only: the rules live in
//! `funnel-domain`, the conversions in the repositories.

pub mod pipeline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipelines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub display_name: String,
        pub version: i64,
        pub created_at: i64,
        pub updated_at: i64,
        pub request_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub pipeline: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub position: i32,
        pub display_name: String,
        pub rot_after_days: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod opportunity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opportunities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub pipeline: String,
        pub stage: String,
        pub status: String,
        pub title: String,
        pub account: String,
        pub owner: String,
        pub currency_code: Option<String>,
        pub amount_minor: Option<i64>,
        pub source: String,
        pub external_id: Option<String>,
        /// JSON object of string to string.
        pub attributes: String,
        pub created_at: i64,
        pub stage_entered_at: i64,
        pub closed_at: Option<i64>,
        pub leak_reason: Option<String>,
        pub last_change_at: i64,
        pub previous_stage: Option<String>,
        pub sequence: i64,
        pub version: i64,
        pub updated_at: i64,
        pub request_id: Option<String>,
        /// The furthest stage reached, by the stages' present order.
        pub furthest_stage: Option<String>,
        /// When its latest activity occurred (the greatest `occurred_at`).
        pub last_activity_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod transition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "transitions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub opportunity_id: Uuid,
        pub sequence: i64,
        pub from_stage: Option<String>,
        pub to_stage: String,
        pub from_status: Option<String>,
        pub to_status: String,
        pub kind: String,
        pub occurred_at: i64,
        pub recorded_at: i64,
        pub actor: String,
        pub reason: String,
        pub note: String,
        /// When the row before this one happened; `None` for the creation.
        pub previous_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::opportunity::Entity",
            from = "Column::OpportunityId",
            to = "super::opportunity::Column::Id"
        )]
        Opportunity,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub opportunity_id: Uuid,
        pub kind: String,
        pub occurred_at: i64,
        pub recorded_at: i64,
        pub actor: String,
        pub note: String,
        pub request_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod model_registry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "models")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub version: i64,
        pub pipeline: String,
        pub status: String,
        pub status_reason: String,
        pub trigger: String,
        pub created_at: i64,
        pub activated_at: Option<i64>,
        pub window_start: i64,
        pub window_end: i64,
        pub advanced_examples: i64,
        pub leaked_examples: i64,
        pub roc_auc: Option<f64>,
        pub baseline_roc_auc: Option<f64>,
        pub training_seconds: f64,
        /// The serialized trained model: feature spec, coefficients, metrics.
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod retrain_job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "retrain_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub pipeline: String,
        pub state: String,
        pub trigger: String,
        pub created_at: i64,
        pub started_at: Option<i64>,
        pub finished_at: Option<i64>,
        pub heartbeat_at: Option<i64>,
        pub worker: Option<String>,
        pub model_version: Option<i64>,
        pub message: String,
        pub attempts: i32,
        pub request_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod training_lease {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "training_leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub pipeline: String,
        pub holder: String,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod current_score {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "current_scores")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub opportunity_id: Uuid,
        pub pipeline: String,
        pub stage: String,
        pub owner: String,
        pub title: String,
        pub model_version: i64,
        pub p_advance: f64,
        pub p_win: f64,
        pub leak_flag: bool,
        /// JSON array of reason codes.
        pub reason_codes: String,
        /// JSON object `{ "down": [...], "up": [...] }`.
        pub factors: String,
        pub days_in_stage: f64,
        pub scored_at: i64,
        /// `p_advance` and `scored_at` of the last history row written for
        /// this opportunity; NULL before the first since they were kept.
        pub recorded_p_advance: Option<f64>,
        pub recorded_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::opportunity::Entity",
            from = "Column::OpportunityId",
            to = "super::opportunity::Column::Id"
        )]
        Opportunity,
    }

    impl Related<super::opportunity::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Opportunity.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod score_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "score_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub opportunity_id: Uuid,
        pub pipeline: String,
        pub stage: String,
        pub owner: String,
        pub title: String,
        pub model_version: i64,
        pub p_advance: f64,
        pub p_win: f64,
        pub leak_flag: bool,
        pub reason_codes: String,
        pub factors: String,
        pub days_in_stage: f64,
        pub scored_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
