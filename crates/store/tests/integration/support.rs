//! Builders shared by the storage tests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use funnel_domain::{Command, OpportunityId, PipelineName, StageKey, Transition};
use funnel_store::{NewOpportunity, Opportunity, StageCommand, Store};

pub fn sales() -> PipelineName {
    PipelineName::parse("pipeline", "sales").expect("valid pipeline name")
}

pub fn stage(key: &str) -> StageKey {
    StageKey::parse("stage", key).expect("valid stage key")
}

pub fn new_opportunity(title: &str, occurred_at: Option<DateTime<Utc>>) -> NewOpportunity {
    NewOpportunity {
        pipeline: sales(),
        stage: None,
        title: title.to_owned(),
        account: "Acme".to_owned(),
        owner: "rep-1".to_owned(),
        amount: None,
        source: "web".to_owned(),
        external_id: None,
        attributes: BTreeMap::new(),
        occurred_at,
        request_id: None,
        actor: "tester".to_owned(),
        note: String::new(),
    }
}

/// `count` opportunities titled `"{prefix} {n}"`, created one by one.
pub async fn create_opportunities(store: &Store, prefix: &str, count: usize) -> Vec<Opportunity> {
    let mut created = Vec::with_capacity(count);
    for n in 0..count {
        created.push(store.create_opportunity(new_opportunity(&format!("{prefix} {n}"), None)).await.expect("create"));
    }
    created
}

pub fn command(command: Command, expected_version: Option<i64>, occurred_at: Option<DateTime<Utc>>) -> StageCommand {
    StageCommand { command, expected_version, occurred_at, actor: "tester".to_owned(), note: String::new() }
}

/// The whole history, read in small pages.
pub async fn full_history(store: &Store, id: OpportunityId) -> Vec<Transition> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = store.list_history(id, 3, &page_token).await.expect("list history");
        rows.extend(page.items.into_iter().map(|row| row.transition));
        if page.next_page_token.is_empty() {
            return rows;
        }
        page_token = page.next_page_token;
    }
}
