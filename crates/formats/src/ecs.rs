//! `ecs`: Elastic Common Schema 8.x documents (what Elasticsearch, Kibana Security and
//! Elastic Agent integrations read). ECS fields where ECS has them; targets, the bucket, the
//! actor type and the payloads under the custom `auditlog.*` namespace (ECS reserves custom
//! fields to a product-named top-level object). Payloads are the stored JSON text, byte for
//! byte.

use auditlog_event::{AuditEvent, Metadata, OutcomeStatus, Payload, Target};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::mapping::{Mapping, OcsfClass};
use crate::ocsf::USER_TARGET_TYPES;

/// The ECS version written in `ecs.version`.
pub const VERSION: &str = "8.11.0";

/// `event.dataset`.
pub const DATASET: &str = "auditlog.audit";

/// One event (stored at `inserted_ms`) as an ECS document, ready to serialize.
pub(crate) fn document(event: &AuditEvent, inserted_ms: i64) -> impl Serialize + '_ {
    Document::new(event, inserted_ms)
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@timestamp", with = "auditlog_event::time_format")]
    timestamp: DateTime<Utc>,
    ecs: Ecs,
    event: Event<'a>,
    message: &'a str,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<UserAgent<'a>>,
    organization: Organization<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Labels<'a>>,
    related: Related<'a>,
    auditlog: Custom<'a>,
}

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Serialize)]
struct Event<'a> {
    id: &'a Uuid,
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of: &'static [&'static str],
    action: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(with = "auditlog_event::time_format")]
    ingested: DateTime<Utc>,
    module: &'static str,
    dataset: &'static str,
}

#[derive(Serialize)]
struct User<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    /// Account changes: the account changed (ECS `user.target.*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<UserTarget<'a>>,
}

#[derive(Serialize)]
struct UserTarget<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
}

#[derive(Serialize)]
struct Source<'a> {
    ip: &'a str,
}

#[derive(Serialize)]
struct UserAgent<'a> {
    original: &'a str,
}

#[derive(Serialize)]
struct Organization<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Labels<'a> {
    correlation_id: &'a str,
}

#[derive(Serialize)]
struct Related<'a> {
    user: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ip: Vec<&'a str>,
}

/// The `auditlog.*` namespace: what ECS has no field for.
#[derive(Serialize)]
struct Custom<'a> {
    bucket: &'a str,
    actor: CustomActor<'a>,
    targets: &'a [Target],
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    request: &'a Payload,
    response: &'a Payload,
}

#[derive(Serialize)]
struct CustomActor<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a Metadata>,
}

impl<'a> Document<'a> {
    fn new(e: &'a AuditEvent, inserted_ms: i64) -> Self {
        let m = Mapping::of(&e.event);
        let account = (m.class == OcsfClass::AccountChange)
            .then(|| {
                e.targets
                    .iter()
                    .find(|t| USER_TARGET_TYPES.contains(&t.kind.as_str()))
            })
            .flatten();
        let mut related_users = vec![e.actor.id.as_str(), e.actor.name.as_str()];
        if let Some(t) = account {
            related_users.extend([t.id.as_str(), t.name.as_str()]);
        }
        related_users.retain(|u| !u.is_empty());
        related_users.sort_unstable();
        related_users.dedup();
        let ip = e.context.remote_ip.as_str();
        Self {
            timestamp: e.time,
            ecs: Ecs { version: VERSION },
            event: Event {
                id: &e.event_id,
                kind: "event",
                category: [m.ecs_category.as_str()],
                kind_of: m.ecs_types(),
                action: e.event.as_str(),
                outcome: match e.outcome.status {
                    OutcomeStatus::Success => "success",
                    OutcomeStatus::Failure => "failure",
                },
                reason: e.outcome.reason.as_deref(),
                ingested: crate::timestamp(inserted_ms),
                module: "auditlog",
                dataset: DATASET,
            },
            message: &e.description,
            user: User {
                id: &e.actor.id,
                name: &e.actor.name,
                target: account.map(|t| UserTarget {
                    id: &t.id,
                    name: &t.name,
                }),
            },
            source: (!ip.is_empty()).then_some(Source { ip }),
            user_agent: (!e.context.user_agent.is_empty()).then(|| UserAgent {
                original: &e.context.user_agent,
            }),
            organization: Organization {
                id: &e.workspace_id,
            },
            labels: e
                .correlation_id
                .as_deref()
                .map(|correlation_id| Labels { correlation_id }),
            related: Related {
                user: related_users,
                ip: if ip.is_empty() { vec![] } else { vec![ip] },
            },
            auditlog: Custom {
                bucket: &e.bucket,
                actor: CustomActor {
                    kind: e.actor.kind.as_str(),
                    meta: e.actor.meta.as_ref(),
                },
                targets: &e.targets,
                location: e.context.location.as_deref(),
                request: &e.request,
                response: &e.response,
            },
        }
    }
}
