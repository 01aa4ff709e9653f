//! Which records a request may touch: everything, or a rep's own. A rep
//! asking about anyone else's opportunity gets the very NOT_FOUND the same
//! call gives for an id that does not exist, so it learns nothing.

use funnel_domain::OpportunityId;
use funnel_store::{Store, StoreError};
use tonic::{Request, Status};

use super::{Role, principal};
use crate::error::store_status;

/// The records a request may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Open mode, or a role that is not narrowed to an owner.
    All,
    /// A rep: only opportunities whose owner is this.
    Owner(String),
}

/// What an owner filter of a list call becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerFilter {
    /// Filter by this owner, or by none.
    Owner(Option<String>),
    /// The caller asked for someone else's records: the answer is empty.
    Nothing,
}

impl Scope {
    pub fn of<T>(request: &Request<T>) -> Scope {
        match principal(request).map(|principal| &principal.role) {
            Some(Role::Rep { owner }) => Scope::Owner(owner.clone()),
            _ => Scope::All,
        }
    }

    /// Fails unless the opportunity exists and is in scope; `hidden_as` is
    /// the kind the store names in this call's NOT_FOUND for a missing id,
    /// so both answers are the same.
    pub async fn ensure_visible(
        &self,
        store: &Store,
        id: OpportunityId,
        hidden_as: &'static str,
    ) -> Result<(), Status> {
        let Scope::Owner(owner) = self else { return Ok(()) };
        match store.get_opportunity(id).await {
            Ok(opportunity) if opportunity.owner == *owner => Ok(()),
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(store_status(StoreError::not_found(hidden_as, id))),
            Err(other) => Err(store_status(other)),
        }
    }

    /// For a record already read: NOT_FOUND (as for a missing id) unless it
    /// is in scope.
    pub fn ensure_owner(&self, kind: &'static str, id: OpportunityId, owner: &str) -> Result<(), Status> {
        match self {
            Scope::Owner(own) if own != owner => Err(store_status(StoreError::not_found(kind, id))),
            _ => Ok(()),
        }
    }

    /// A rep may create or hand over opportunities only to itself.
    pub fn ensure_may_assign(&self, field: &str, owner: &str) -> Result<(), Status> {
        match self {
            Scope::Owner(own) if own != owner => {
                Err(Status::permission_denied(format!("{field}: a rep may only assign opportunities to itself")))
            }
            _ => Ok(()),
        }
    }

    /// Narrows a list call's owner filter to the rep's own records.
    pub fn owner_filter(&self, requested: Option<String>) -> OwnerFilter {
        match (self, requested) {
            (Scope::All, requested) => OwnerFilter::Owner(requested),
            (Scope::Owner(own), Some(requested)) if requested != *own => OwnerFilter::Nothing,
            (Scope::Owner(own), _) => OwnerFilter::Owner(Some(own.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rep_listing_someone_elses_records_gets_nothing() {
        let rep = Scope::Owner("ana".to_owned());
        assert_eq!(rep.owner_filter(None), OwnerFilter::Owner(Some("ana".to_owned())));
        assert_eq!(rep.owner_filter(Some("ana".to_owned())), OwnerFilter::Owner(Some("ana".to_owned())));
        assert_eq!(rep.owner_filter(Some("bob".to_owned())), OwnerFilter::Nothing);
        assert_eq!(Scope::All.owner_filter(Some("bob".to_owned())), OwnerFilter::Owner(Some("bob".to_owned())));
    }
}
