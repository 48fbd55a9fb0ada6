//! The event type: `resource.action`, with a typed catalog of what the product audits.
//!
//! Custom types beyond the catalog are allowed when they follow the naming rule
//! ([`EventType::is_well_formed`]): `resource.action`, each part lowercase ASCII
//! letters, digits and `_`, starting with a letter, 64 bytes at most in all.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest event type accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 64;

/// An event type such as `key.create`. Any string deserializes; validation checks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    /// Wraps a string without checking it (validation does that).
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource part (`key` for `key.create`).
    pub fn resource(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(r, _)| r)
    }

    /// The action part (`create` for `key.create`).
    pub fn action(&self) -> &str {
        self.0.split_once('.').map_or("", |(_, a)| a)
    }

    /// The catalog entry, when this is a catalog type.
    pub fn known(&self) -> Option<KnownEvent> {
        KnownEvent::parse(&self.0)
    }

    /// Whether the string follows the naming rule `resource.action`.
    pub fn is_well_formed(s: &str) -> bool {
        fn part(p: &str) -> bool {
            let mut chars = p.chars();
            matches!(chars.next(), Some('a'..='z'))
                && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        }
        s.len() <= MAX_EVENT_TYPE_LEN && s.split_once('.').is_some_and(|(r, a)| part(r) && part(a))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<KnownEvent> for EventType {
    fn from(k: KnownEvent) -> Self {
        Self(k.as_str().to_owned())
    }
}

macro_rules! catalog {
    ($( $variant:ident => $name:literal, $desc:literal; )*) => {
        /// Every event type the product audits. Documented in `docs/events.md` (table generated from [`KnownEvent::ALL`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum KnownEvent {
            $( #[doc = $desc] $variant, )*
        }

        impl KnownEvent {
            /// Every catalog entry, grouped by resource.
            pub const ALL: &'static [KnownEvent] = &[ $( KnownEvent::$variant, )* ];

            /// The wire name, `resource.action`.
            pub fn as_str(self) -> &'static str {
                match self { $( KnownEvent::$variant => $name, )* }
            }

            /// What the event records.
            pub fn description(self) -> &'static str {
                match self { $( KnownEvent::$variant => $desc, )* }
            }

            /// Looks up a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $name => Some(KnownEvent::$variant), )* _ => None }
            }
        }
    };
}

catalog! {
    KeyCreate => "key.create", "A key was created.";
    KeyUpdate => "key.update", "A key's name, metadata, expiry, limits or enabled state changed.";
    KeyRevoke => "key.revoke", "A key was revoked: it stays on record but no longer verifies.";
    KeyDelete => "key.delete", "A key was deleted.";
    KeyVerifyFailed => "key.verify_failed", "A key verification failed (outcome reason says why: not found, revoked, expired, rate limited, ...).";
    ApiCreate => "api.create", "A keyspace (API) was created.";
    ApiUpdate => "api.update", "A keyspace (API) was renamed or its settings changed.";
    ApiDelete => "api.delete", "A keyspace (API) was deleted.";
    PermissionCreate => "permission.create", "A permission was created.";
    PermissionUpdate => "permission.update", "A permission's name or description changed.";
    PermissionDelete => "permission.delete", "A permission was deleted.";
    PermissionAttach => "permission.attach", "A permission was attached to a key.";
    PermissionDetach => "permission.detach", "A permission was removed from a key.";
    RoleCreate => "role.create", "A role was created.";
    RoleUpdate => "role.update", "A role's name, description or permissions changed.";
    RoleDelete => "role.delete", "A role was deleted.";
    RoleAssign => "role.assign", "A role was assigned to a key.";
    RoleUnassign => "role.unassign", "A role was removed from a key.";
    RatelimitNamespaceCreate => "ratelimit.namespace_create", "A rate limit namespace was created.";
    RatelimitUpdate => "ratelimit.update", "A namespace's default limits changed.";
    RatelimitOverrideSet => "ratelimit.override_set", "A per-identifier rate limit override was set.";
    WorkspaceMemberAdd => "workspace.member_add", "A member was added to the workspace.";
    WorkspaceMemberRemove => "workspace.member_remove", "A member was removed from the workspace.";
    WorkspaceSettingsUpdate => "workspace.settings_update", "Workspace settings changed.";
}

impl fmt::Display for KnownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_follow_the_naming_rule_and_round_trip() {
        for k in KnownEvent::ALL {
            assert!(EventType::is_well_formed(k.as_str()), "{k}");
            assert_eq!(KnownEvent::parse(k.as_str()), Some(*k));
            assert!(!k.description().is_empty());
        }
    }

    #[test]
    fn naming_rule() {
        for ok in ["key.create", "billing.invoice_paid", "a1.b2"] {
            assert!(EventType::is_well_formed(ok), "{ok}");
        }
        for bad in [
            "",
            "key",
            "Key.create",
            "key.",
            ".create",
            "key.create.x",
            "1key.create",
            "key.cre-ate",
            "key.create ",
        ] {
            assert!(!EventType::is_well_formed(bad), "{bad}");
        }
        assert!(!EventType::is_well_formed(&format!(
            "a.{}",
            "b".repeat(MAX_EVENT_TYPE_LEN)
        )));
    }
}
