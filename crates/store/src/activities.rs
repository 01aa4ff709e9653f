use funnel_domain::{ActivityKind, DomainError, OpportunityId, check_occurred_at};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::entity::{activity, opportunity};
use crate::model::{Activity, NewActivity, Page};
use crate::opportunities::fetch;
use crate::time::{self, from_micros, to_micros};
use crate::{Result, Store, StoreError, page};

impl Store {
    /// Logs an activity. It may predate the latest stage change (a call is
    /// often logged late) but not the opportunity's creation.
    pub async fn log_activity(&self, new: NewActivity) -> Result<Activity> {
        let _writer = self.write_lock().await;
        if let Some(request_id) = &new.request_id
            && let Some(existing) = activity::Entity::find()
                .filter(activity::Column::RequestId.eq(request_id.as_str()))
                .one(&self.db)
                .await?
        {
            return from_row(existing);
        }
        let txn = self.begin_write().await?;
        let opportunity = fetch(&txn, new.opportunity_id).await?;
        let now = time::now();
        let occurred_at = new.occurred_at.map(time::truncate).unwrap_or(now);
        check_occurred_at("occurred_at", occurred_at, None, now)?;
        if occurred_at < opportunity.state.created_at {
            return Err(DomainError::invalid(
                "occurred_at",
                format!("{occurred_at} is before the opportunity was created at {}", opportunity.state.created_at),
            )
            .into());
        }
        let stored = Activity {
            id: Uuid::now_v7(),
            opportunity_id: new.opportunity_id,
            kind: new.kind,
            occurred_at,
            recorded_at: now,
            actor: new.actor,
            note: new.note,
        };
        activity::Entity::insert(to_row(&stored, new.request_id)).exec_without_returning(&txn).await?;
        // An activity logged late (earlier than the latest) leaves it.
        let at = to_micros(occurred_at);
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::LastActivityAt, Expr::value(at))
            .filter(opportunity::Column::Id.eq(new.opportunity_id.uuid()))
            .filter(
                Condition::any()
                    .add(opportunity::Column::LastActivityAt.is_null())
                    .add(opportunity::Column::LastActivityAt.lt(at)),
            )
            .exec(&txn)
            .await?;
        let event = crate::events::new::activity_logged(&opportunity.pipeline, &stored);
        self.commit_with_events(txn, vec![event]).await?;
        Ok(stored)
    }

    /// An opportunity's activities in the order they occurred.
    pub async fn list_activities(&self, id: OpportunityId, page_size: u32, page_token: &str) -> Result<Page<Activity>> {
        fetch(&self.db, id).await?;
        let scope = format!("activities|{id}");
        let mut query = activity::Entity::find()
            .filter(activity::Column::OpportunityId.eq(id.uuid()))
            .order_by_asc(activity::Column::OccurredAt)
            .order_by_asc(activity::Column::Id);
        if let Some(key) = page::decode(&scope, page_token)? {
            let damaged = || DomainError::invalid("page_token", "is damaged");
            let (micros, last_id) = key.split_once('/').ok_or_else(damaged)?;
            let micros: i64 = micros.parse().map_err(|_| damaged())?;
            let last_id = Uuid::parse_str(last_id).map_err(|_| damaged())?;
            query = query.filter(Condition::any().add(activity::Column::OccurredAt.gt(micros)).add(
                Condition::all().add(activity::Column::OccurredAt.eq(micros)).add(activity::Column::Id.gt(last_id)),
            ));
        }
        let rows = query.limit(u64::from(page_size) + 1).all(&self.db).await?;
        let items = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(page::finish(items, page_size, &scope, |last| format!("{}/{}", to_micros(last.occurred_at), last.id)))
    }
}

pub(crate) fn to_row(stored: &Activity, request_id: Option<String>) -> activity::ActiveModel {
    activity::ActiveModel {
        id: Set(stored.id),
        opportunity_id: Set(stored.opportunity_id.uuid()),
        kind: Set(stored.kind.as_str().to_owned()),
        occurred_at: Set(to_micros(stored.occurred_at)),
        recorded_at: Set(to_micros(stored.recorded_at)),
        actor: Set(stored.actor.clone()),
        note: Set(stored.note.clone()),
        request_id: Set(request_id),
    }
}

fn from_row(row: activity::Model) -> Result<Activity> {
    Ok(Activity {
        id: row.id,
        opportunity_id: OpportunityId::from_uuid(row.opportunity_id),
        kind: ActivityKind::parse(&row.kind)
            .ok_or_else(|| StoreError::Internal(format!("unknown activity kind {:?}", row.kind)))?,
        occurred_at: from_micros(row.occurred_at),
        recorded_at: from_micros(row.recorded_at),
        actor: row.actor,
        note: row.note,
    })
}
