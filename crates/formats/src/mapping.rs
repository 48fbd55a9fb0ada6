//! What an event type is, in the vocabularies of OCSF and ECS: one [`Mapping`] per type.
//!
//! Catalog types are mapped one by one (an exhaustive `match`, so a new catalog entry does not
//! compile until someone decides its class); custom types (`billing.invoice_paid`) are mapped
//! from the words of their name. docs/formats.md carries the table generated from
//! [`Mapping::of`] over `KnownEvent::ALL`.

use auditlog_event::{EventType, KnownEvent};

/// The OCSF class an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcsfClass {
    /// API Activity (6003, category Application Activity): a resource of the platform was
    /// created, changed or deleted through its API or dashboard.
    ApiActivity,
    /// Account Change (3001, category Identity & Access Management): the target is a user
    /// account (a workspace member added or removed).
    AccountChange,
}

impl OcsfClass {
    /// `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            OcsfClass::ApiActivity => 6003,
            OcsfClass::AccountChange => 3001,
        }
    }

    /// `class_name`.
    pub fn name(self) -> &'static str {
        match self {
            OcsfClass::ApiActivity => "API Activity",
            OcsfClass::AccountChange => "Account Change",
        }
    }

    /// `category_uid`.
    pub fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    /// `category_name`.
    pub fn category_name(self) -> &'static str {
        match self {
            OcsfClass::ApiActivity => "Application Activity",
            OcsfClass::AccountChange => "Identity & Access Management",
        }
    }

    /// `activity_id` and `activity_name` of `verb` in this class (each class has its own enum).
    pub fn activity(self, verb: Verb) -> (u32, &'static str) {
        match (self, verb) {
            (OcsfClass::ApiActivity, Verb::Create) => (1, "Create"),
            (OcsfClass::ApiActivity, Verb::Read) => (2, "Read"),
            (OcsfClass::ApiActivity, Verb::Update) => (3, "Update"),
            (OcsfClass::ApiActivity, Verb::Delete) => (4, "Delete"),
            (OcsfClass::AccountChange, Verb::Create) => (1, "Create"),
            (OcsfClass::AccountChange, Verb::Delete) => (6, "Delete"),
            (_, _) => (99, "Other"),
        }
    }
}

/// What the action did to its target, independent of vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Created or added.
    Create,
    /// Read or exported.
    Read,
    /// Changed (renamed, attached, assigned, revoked, set...).
    Update,
    /// Deleted or removed.
    Delete,
    /// Anything else (a failed key verification).
    Other,
}

/// The ECS `event.category` an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcsCategory {
    /// Credentials and access control: keys, permissions, roles, members.
    Iam,
    /// Settings of the platform: APIs, rate limits, workspace settings, custom types.
    Configuration,
    /// A credential was presented (key verification).
    Authentication,
}

impl EcsCategory {
    /// The ECS value.
    pub fn as_str(self) -> &'static str {
        match self {
            EcsCategory::Iam => "iam",
            EcsCategory::Configuration => "configuration",
            EcsCategory::Authentication => "authentication",
        }
    }
}

/// How one event type is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The OCSF class.
    pub class: OcsfClass,
    /// What the action did.
    pub verb: Verb,
    /// The ECS category.
    pub ecs_category: EcsCategory,
}

impl Mapping {
    /// The mapping of an event type (catalog or custom).
    pub fn of(event: &EventType) -> Self {
        match event.known() {
            Some(k) => Self::known(k),
            None => Self::custom(event.resource(), event.action()),
        }
    }

    /// The mapping of a catalog type.
    pub fn known(k: KnownEvent) -> Self {
        use EcsCategory::*;
        use KnownEvent::*;
        use Verb::*;
        let (class, verb, ecs_category) = match k {
            KeyCreate => (OcsfClass::ApiActivity, Create, Iam),
            KeyUpdate | KeyRevoke => (OcsfClass::ApiActivity, Update, Iam),
            KeyDelete => (OcsfClass::ApiActivity, Delete, Iam),
            KeyVerifyFailed => (OcsfClass::ApiActivity, Other, Authentication),
            ApiCreate => (OcsfClass::ApiActivity, Create, Configuration),
            ApiUpdate => (OcsfClass::ApiActivity, Update, Configuration),
            ApiDelete => (OcsfClass::ApiActivity, Delete, Configuration),
            PermissionCreate | RoleCreate => (OcsfClass::ApiActivity, Create, Iam),
            PermissionUpdate | PermissionAttach | PermissionDetach => {
                (OcsfClass::ApiActivity, Update, Iam)
            }
            RoleUpdate | RoleAssign | RoleUnassign => (OcsfClass::ApiActivity, Update, Iam),
            PermissionDelete | RoleDelete => (OcsfClass::ApiActivity, Delete, Iam),
            RatelimitNamespaceCreate => (OcsfClass::ApiActivity, Create, Configuration),
            RatelimitUpdate | RatelimitOverrideSet => {
                (OcsfClass::ApiActivity, Update, Configuration)
            }
            WorkspaceMemberAdd => (OcsfClass::AccountChange, Create, Iam),
            WorkspaceMemberRemove => (OcsfClass::AccountChange, Delete, Iam),
            WorkspaceSettingsUpdate => (OcsfClass::ApiActivity, Update, Configuration),
        };
        Self {
            class,
            verb,
            ecs_category,
        }
    }

    /// The mapping of a custom type, from its words: a `user`, `member` or `account` resource
    /// (or a `member_*` action) is an account change, anything else API activity; the verb is
    /// the first known word of the action (`invoice_paid` is `Other`).
    fn custom(resource: &str, action: &str) -> Self {
        let account =
            matches!(resource, "user" | "member" | "account") || action.starts_with("member_");
        let verb = action
            .split('_')
            .find_map(verb_of_word)
            .unwrap_or(Verb::Other);
        Self {
            class: if account {
                OcsfClass::AccountChange
            } else {
                OcsfClass::ApiActivity
            },
            verb,
            ecs_category: if account {
                EcsCategory::Iam
            } else {
                EcsCategory::Configuration
            },
        }
    }

    /// OCSF `activity_id` and `activity_name`.
    pub fn activity(self) -> (u32, &'static str) {
        self.class.activity(self.verb)
    }

    /// OCSF `type_uid`: `class_uid * 100 + activity_id`.
    pub fn type_uid(self) -> u32 {
        self.class.uid() * 100 + self.activity().0
    }

    /// ECS `event.type` values.
    pub fn ecs_types(self) -> &'static [&'static str] {
        match (self.ecs_category, self.class, self.verb) {
            (EcsCategory::Authentication, _, _) => &["start"],
            (_, OcsfClass::AccountChange, Verb::Create) => &["user", "creation"],
            (_, OcsfClass::AccountChange, Verb::Delete) => &["user", "deletion"],
            (_, OcsfClass::AccountChange, _) => &["user", "change"],
            (_, _, Verb::Create) => &["creation"],
            (_, _, Verb::Delete) => &["deletion"],
            (_, _, Verb::Update) => &["change"],
            (EcsCategory::Configuration, _, Verb::Read) => &["access"],
            (_, _, Verb::Read | Verb::Other) => &["info"],
        }
    }
}

fn verb_of_word(word: &str) -> Option<Verb> {
    Some(match word {
        "create" | "add" | "insert" | "invite" | "new" => Verb::Create,
        "delete" | "remove" | "destroy" | "purge" => Verb::Delete,
        "read" | "get" | "list" | "view" | "export" | "download" => Verb::Read,
        "update" | "set" | "change" | "rename" | "edit" | "enable" | "disable" | "revoke"
        | "attach" | "detach" | "assign" | "unassign" | "rotate" | "grant" => Verb::Update,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_type_has_a_valid_class_and_activity() {
        for k in KnownEvent::ALL {
            let m = Mapping::of(&EventType::from(*k));
            let (id, name) = m.activity();
            let allowed: &[u32] = match m.class {
                // api_activity.json: 1-4; classification: 0 and 99.
                OcsfClass::ApiActivity => &[1, 2, 3, 4, 99],
                // account_change.json: 1-11; classification: 0 and 99.
                OcsfClass::AccountChange => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99],
            };
            assert!(allowed.contains(&id), "{k}: activity {id}");
            assert!(!name.is_empty());
            assert_eq!(m.type_uid(), m.class.uid() * 100 + id);
            assert!(!m.ecs_types().is_empty(), "{k}");
        }
    }

    #[test]
    fn member_events_are_account_changes_and_the_rest_api_activity() {
        let of = |s: &str| Mapping::of(&EventType::new(s));
        assert_eq!(of("workspace.member_add").class, OcsfClass::AccountChange);
        assert_eq!(of("workspace.member_add").type_uid(), 300101);
        assert_eq!(of("workspace.member_remove").type_uid(), 300106);
        assert_eq!(of("key.create").type_uid(), 600301);
        assert_eq!(of("key.delete").type_uid(), 600304);
        assert_eq!(of("role.assign").type_uid(), 600303);
        assert_eq!(of("key.verify_failed").type_uid(), 600399);
        // Custom types, from their words.
        assert_eq!(of("billing.invoice_paid").type_uid(), 600399);
        assert_eq!(of("webhook.create").type_uid(), 600301);
        assert_eq!(of("audit.export_download").verb, Verb::Read);
        assert_eq!(of("user.disable").class, OcsfClass::AccountChange);
        assert_eq!(of("team.member_invite").type_uid(), 300101);
        assert_eq!(of("user.rename").type_uid(), 300199);
    }
}
