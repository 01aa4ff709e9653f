//! Which role may call which method: the one table of the service's
//! permissions (the README's roles table is this one). A method missing from
//! it is the service role's alone, so a new RPC is closed until someone
//! decides who may call it.

use super::Role;

/// Who besides `service` (which may call everything) may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub manager: bool,
    pub ops: bool,
    /// Reps are further narrowed to their own records in the handlers.
    pub rep: bool,
}

const SERVICE_ONLY: Allowed = Allowed { manager: false, ops: false, rep: false };
/// Opportunities and activities: managers and (their own) reps.
const SALES: Allowed = Allowed { manager: true, ops: false, rep: true };
/// Reads of what ops needs: models, jobs, reports.
const STAFF_READ: Allowed = Allowed { manager: true, ops: true, rep: false };
const EVERYONE: Allowed = Allowed { manager: true, ops: true, rep: true };
/// Changes to models: ops.
const OPS: Allowed = Allowed { manager: false, ops: true, rep: false };
const MANAGER: Allowed = Allowed { manager: true, ops: false, rep: false };

const PIPELINE: &str = "/funnel.v1.PipelineService/";
const SCORING: &str = "/funnel.v1.ScoringService/";
const REFLECTION: [&str; 2] = ["/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];
/// Health answers without a token: orchestrators probe it.
pub const HEALTH: &str = "/grpc.health.v1.Health/";

/// Every method of `funnel.v1` and who may call it.
pub const RULES: &[(&str, &str, Allowed)] = &[
    (PIPELINE, "CreatePipeline", SERVICE_ONLY),
    (PIPELINE, "GetPipeline", EVERYONE),
    (PIPELINE, "ListPipelines", EVERYONE),
    (PIPELINE, "UpdatePipeline", SERVICE_ONLY),
    (PIPELINE, "CreateOpportunity", SALES),
    (PIPELINE, "GetOpportunity", SALES),
    (PIPELINE, "ListOpportunities", SALES),
    (PIPELINE, "UpdateOpportunity", SALES),
    (PIPELINE, "MoveOpportunity", SALES),
    (PIPELINE, "LeakOpportunity", SALES),
    (PIPELINE, "ReopenOpportunity", SALES),
    (PIPELINE, "LogActivity", SALES),
    (PIPELINE, "ListActivities", SALES),
    (PIPELINE, "ListStageHistory", SALES),
    // Import writes histories with any actor and any date: not a person's call.
    (PIPELINE, "ImportOpportunities", SERVICE_ONLY),
    (PIPELINE, "GetFunnelReport", STAFF_READ),
    (PIPELINE, "GetMovementStats", STAFF_READ),
    // Every change of every owner: more than a rep may see.
    (PIPELINE, "WatchEvents", MANAGER),
    (SCORING, "GetLeadScore", SALES),
    (SCORING, "ListLeadScores", SALES),
    (SCORING, "ListModels", STAFF_READ),
    (SCORING, "GetModel", STAFF_READ),
    (SCORING, "TriggerRetrain", OPS),
    (SCORING, "GetRetrainJob", STAFF_READ),
    (SCORING, "ActivateModel", OPS),
];

/// Whether `role` may call the method at `path` (`/package.Service/Method`).
pub fn may_call(role: &Role, path: &str) -> bool {
    let allowed = allowed(path);
    match role {
        Role::Service => true,
        Role::Manager => allowed.manager,
        Role::Ops => allowed.ops,
        Role::Rep { .. } => allowed.rep,
    }
}

fn allowed(path: &str) -> Allowed {
    if REFLECTION.iter().any(|prefix| path.starts_with(prefix)) {
        return EVERYONE;
    }
    for (service, method, allowed) in RULES {
        if path.strip_prefix(service) == Some(method) {
            return *allowed;
        }
    }
    SERVICE_ONLY
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    /// A new RPC fails this test until the table says who may call it.
    #[test]
    fn every_method_of_the_contract_has_a_rule() {
        let set = FileDescriptorSet::decode(funnel_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes");
        let mut missing = Vec::new();
        for file in &set.file {
            for service in &file.service {
                let prefix = format!("/{}.{}/", file.package(), service.name());
                for method in &service.method {
                    let known = RULES.iter().any(|(service, name, _)| *service == prefix && *name == method.name());
                    if !known {
                        missing.push(format!("{prefix}{}", method.name()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "methods without a rule: {missing:?}");
    }

    #[test]
    fn an_unknown_method_is_the_service_roles_alone() {
        let path = "/funnel.v1.PipelineService/DropEverything";
        assert!(may_call(&Role::Service, path));
        assert!(!may_call(&Role::Manager, path));
        assert!(!may_call(&Role::Rep { owner: "ana".to_owned() }, path));
    }
}
