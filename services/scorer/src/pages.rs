//! A pipeline's opportunities with their histories, a page at a time (keyset
//! on the id), for the runs that go over all of them.

use funnel_domain::{OpportunityId, PipelineName, Status};
use funnel_store::{ActivitySpan, OpportunityHistory, Store};

use crate::error::Result;

pub(crate) struct HistoryPages<'a> {
    store: &'a Store,
    pipeline: &'a PipelineName,
    status: Option<Status>,
    batch_size: u64,
    after: Option<OpportunityId>,
    done: bool,
}

impl<'a> HistoryPages<'a> {
    pub(crate) fn new(store: &'a Store, pipeline: &'a PipelineName, status: Option<Status>, batch_size: u64) -> Self {
        Self { store, pipeline, status, batch_size, after: None, done: false }
    }

    /// The next page; `None` after the last.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<OpportunityHistory>>> {
        if self.done {
            return Ok(None);
        }
        let batch = self
            .store
            .history_batch(self.pipeline, self.status, self.after, self.batch_size, ActivitySpan::All)
            .await?;
        // A short page is the last: no query for an empty one after it.
        self.done = (batch.len() as u64) < self.batch_size;
        let Some(last) = batch.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(last.opportunity.id);
        Ok(Some(batch))
    }
}
