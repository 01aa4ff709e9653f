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
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

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
