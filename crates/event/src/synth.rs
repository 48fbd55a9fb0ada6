//! Synthetic, realistic audit events for demos, tests and benchmarks. No I/O; deterministic
//! for a given [`SynthConfig`] (seed and `now` included). Behind the `synth` cargo feature
//! (the CLI, tests and benchmarks enable it; producing services need not compile it).
//!
//! ```
//! use auditlog_event::synth::{Synth, SynthConfig};
//!
//! let mut synth = Synth::new(SynthConfig { seed: 7, workspaces: 3, ..SynthConfig::default() });
//! let event = synth.next_event();
//! assert!(event.workspace_id.starts_with("ws_"));
//! event.validate().unwrap();
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::builder::AuditEventBuilder;
use crate::catalog::KnownEvent;
use crate::model::{Actor, AuditEvent, Payload, Target};
use crate::validate::serialized_len;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Seed of the random generator. Default 0.
    pub seed: u64,
    /// Number of workspaces events are spread over (at least 1). Default 10.
    pub workspaces: usize,
    /// The newest time generated. Default: the time `SynthConfig::default()` ran.
    pub now: DateTime<Utc>,
    /// Times are spread uniformly over `[now - spread, now]`. Default 1 second.
    pub spread: TimeDelta,
    /// Share of `key.verify_failed` among events, 0.0 to 1.0. Default 0.1.
    pub verify_failed_ratio: f64,
    /// Pad each event's request payload so the serialized event is about this many bytes.
    /// Default `None` (natural size, 0.6 to 1.2 KB).
    pub target_bytes: Option<usize>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            workspaces: 10,
            now: Utc::now(),
            spread: TimeDelta::seconds(1),
            verify_failed_ratio: 0.1,
            target_bytes: None,
        }
    }
}

impl SynthConfig {
    /// Spreads times over the last `days` days (0 means the last second).
    pub fn over_days(mut self, days: u32) -> Self {
        self.spread = if days == 0 {
            TimeDelta::seconds(1)
        } else {
            TimeDelta::days(i64::from(days))
        };
        self
    }
}

/// A generator of events; also an endless [`Iterator`].
#[derive(Debug)]
pub struct Synth {
    cfg: SynthConfig,
    rng: StdRng,
    workspaces: Vec<Workspace>,
}

#[derive(Debug)]
struct Workspace {
    id: String,
    users: Vec<(String, String, String)>,
    root_keys: Vec<(String, String)>,
    apis: Vec<(String, String)>,
    location: &'static str,
}

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carmen", "Deepak", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Mei", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
];
const LAST: &[&str] = &[
    "Chen", "Okafor", "Garcia", "Patel", "Novak", "Haddad", "Kim", "Tanaka", "Silva", "Berg",
    "Adeyemi", "Murphy", "Wang", "Lind", "Rahman", "Iyer", "Walsh", "Costa", "Larsen", "Aziz",
];
const API_NAMES: &[&str] = &[
    "payments",
    "billing",
    "search",
    "notifications",
    "inventory",
    "auth",
    "reports",
    "webhooks",
];
const KEY_NAMES: &[&str] = &[
    "prod-billing",
    "staging-ci",
    "mobile-app",
    "partner-acme",
    "analytics-export",
    "cron-sync",
    "support-tool",
    "edge-worker",
];
const ROOT_KEY_NAMES: &[&str] = &["terraform", "ci-deploy", "backoffice", "ops-cli"];
const PERMISSIONS: &[&str] = &[
    "api.read",
    "api.write",
    "keys.create",
    "keys.delete",
    "ratelimit.read",
    "billing.admin",
];
const ROLES: &[&str] = &["admin", "developer", "viewer", "billing-manager", "support"];
const NAMESPACES: &[&str] = &["api.requests", "email.send", "login.attempts", "sms.otp"];
const LOCATIONS: &[&str] = &["DE", "US", "BR", "IN", "JP", "NG", "FR", "GB"];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];
const SDK_AGENTS: &[&str] = &[
    "unkey-go/1.4.0",
    "unkey-ts/2.1.3",
    "terraform-provider/0.9.1",
    "curl/8.7.1",
];
const VERIFY_FAILURES: &[&str] = &[
    "not_found",
    "revoked",
    "expired",
    "rate_limited",
    "disabled",
    "insufficient_permissions",
];

impl Synth {
    /// A generator for `cfg`.
    pub fn new(cfg: SynthConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let workspaces = (0..cfg.workspaces.max(1))
            .map(|_| Workspace::generate(&mut rng))
            .collect();
        Self {
            cfg,
            rng,
            workspaces,
        }
    }

    /// The workspace ids events are spread over.
    pub fn workspace_ids(&self) -> impl Iterator<Item = &str> {
        self.workspaces.iter().map(|w| w.id.as_str())
    }

    /// One event of a random catalog type.
    pub fn next_event(&mut self) -> AuditEvent {
        let kind = if self
            .rng
            .random_bool(self.cfg.verify_failed_ratio.clamp(0.0, 1.0))
        {
            KnownEvent::KeyVerifyFailed
        } else {
            *KnownEvent::ALL
                .choose(&mut self.rng)
                .unwrap_or(&KnownEvent::KeyCreate)
        };
        self.event_of(kind)
    }

    /// One event of type `kind`.
    pub fn event_of(&mut self, kind: KnownEvent) -> AuditEvent {
        let ws_index = self.rng.random_range(0..self.workspaces.len());
        let spread_ms = self.cfg.spread.num_milliseconds().max(1);
        let time = self.cfg.now - TimeDelta::milliseconds(self.rng.random_range(0..spread_ms));
        let mut rand_bytes = [0u8; 10];
        self.rng.fill(&mut rand_bytes);
        let ms = u64::try_from(time.timestamp_millis()).unwrap_or(0);
        let event_id = uuid::Builder::from_unix_timestamp_millis(ms, &rand_bytes).into_uuid();
        let rng = &mut self.rng;
        let ws = &self.workspaces[ws_index];

        let (actor, ua) = if kind == KnownEvent::KeyVerifyFailed || rng.random_bool(0.3) {
            let (id, name) = pick(rng, &ws.root_keys);
            (
                Actor::root_key(id, name),
                *SDK_AGENTS.choose(rng).unwrap_or(&"curl/8.7.1"),
            )
        } else if rng.random_bool(0.05) {
            (Actor::system("retention-job"), "auditlog-system/1.0")
        } else {
            let (id, name, email) = ws.users[rng.random_range(0..ws.users.len())].clone();
            let mut meta = serde_json::Map::new();
            meta.insert("email".into(), Value::String(email));
            (
                Actor::user(id, name).with_meta(meta),
                *USER_AGENTS.choose(rng).unwrap_or(&""),
            )
        };
        let who = actor.name.clone();
        let (api_id, api) = pick(rng, &ws.apis);
        let api_t = Target::new("api", api_id.clone(), api.clone());
        let key_id = rid(rng, "key_");
        let key = (*KEY_NAMES.choose(rng).unwrap_or(&"key")).to_owned();
        let key_t = Target::new("key", key_id.clone(), key.clone());
        let perm = *PERMISSIONS.choose(rng).unwrap_or(&"api.read");
        let perm_t = Target::new("permission", rid(rng, "perm_"), perm);
        let role = *ROLES.choose(rng).unwrap_or(&"viewer");
        let role_t = Target::new("role", rid(rng, "role_"), role);
        let ns = *NAMESPACES.choose(rng).unwrap_or(&"api.requests");
        let ns_t = Target::new("ratelimit_namespace", rid(rng, "rlns_"), ns);
        let limit = [10, 100, 1000, 5000][rng.random_range(0..4)];
        let (member_id, member, member_email) =
            ws.users[rng.random_range(0..ws.users.len())].clone();
        let member_t = Target::new("user", member_id.clone(), member.clone());
        let ws_t = Target::new("workspace", ws.id.clone(), ws.id.clone());

        use KnownEvent::*;
        let b = AuditEvent::builder(ws.id.clone(), kind);
        let b = match kind {
            KeyCreate => b
                .target(api_t).target(key_t)
                .description(format!("{who} created key '{key}' in API '{api}'"))
                .request(json!({"apiId": api_id, "name": key, "prefix": "sk_live", "byteLength": 16, "meta": {"team": "platform"}, "ratelimit": {"limit": limit, "duration": 60000}}))
                .response(json!({"keyId": key_id, "key": "sk_live_••••••••"})),
            KeyUpdate => b
                .target(api_t).target(key_t)
                .description(format!("{who} updated key '{key}' in API '{api}'"))
                .request(json!({"keyId": key_id, "enabled": true, "expires": null, "remaining": limit}))
                .response(json!({})),
            KeyRevoke => b
                .target(api_t).target(key_t)
                .description(format!("{who} revoked key '{key}' in API '{api}'"))
                .request(json!({"keyId": key_id, "reason": "rotated"}))
                .response(json!({"revokedAt": time.timestamp_millis()})),
            KeyDelete => b
                .target(api_t).target(key_t)
                .description(format!("{who} deleted key '{key}' from API '{api}'"))
                .request(json!({"keyId": key_id, "permanent": false}))
                .response(json!({})),
            KeyVerifyFailed => {
                let reason = *VERIFY_FAILURES.choose(rng).unwrap_or(&"not_found");
                b.target(api_t).target(key_t)
                    .description(format!("Verification of key '{key}' in API '{api}' failed: {reason}"))
                    .request(json!({"apiId": api_id, "key": "sk_live_••••••••", "permissions": perm}))
                    .response(json!({"valid": false, "code": reason.to_uppercase()}))
                    .failure(reason)
            }
            ApiCreate => b
                .target(api_t)
                .description(format!("{who} created API '{api}'"))
                .request(json!({"name": api}))
                .response(json!({"apiId": api_id})),
            ApiUpdate => b
                .target(api_t)
                .description(format!("{who} updated settings of API '{api}'"))
                .request(json!({"apiId": api_id, "ipWhitelist": ["10.0.0.0/8"], "deleteProtection": true}))
                .response(json!({})),
            ApiDelete => b
                .target(api_t)
                .description(format!("{who} deleted API '{api}'"))
                .request(json!({"apiId": api_id}))
                .response(json!({})),
            PermissionCreate => b
                .target(perm_t)
                .description(format!("{who} created permission '{perm}'"))
                .request(json!({"name": perm, "description": format!("Allows {perm}")}))
                .response(json!({"permissionId": "perm"})),
            PermissionUpdate => b
                .target(perm_t)
                .description(format!("{who} updated permission '{perm}'"))
                .request(json!({"name": perm, "description": "Updated description"}))
                .response(json!({})),
            PermissionDelete => b
                .target(perm_t)
                .description(format!("{who} deleted permission '{perm}'"))
                .request(json!({"name": perm}))
                .response(json!({})),
            PermissionAttach => b
                .target(key_t).target(perm_t)
                .description(format!("{who} attached permission '{perm}' to key '{key}'"))
                .request(json!({"keyId": key_id, "permissions": [perm]}))
                .response(json!({})),
            PermissionDetach => b
                .target(key_t).target(perm_t)
                .description(format!("{who} removed permission '{perm}' from key '{key}'"))
                .request(json!({"keyId": key_id, "permissions": [perm]}))
                .response(json!({})),
            RoleCreate => b
                .target(role_t)
                .description(format!("{who} created role '{role}'"))
                .request(json!({"name": role, "permissions": [perm]}))
                .response(json!({"roleId": "role"})),
            RoleUpdate => b
                .target(role_t).target(perm_t)
                .description(format!("{who} added permission '{perm}' to role '{role}'"))
                .request(json!({"name": role, "addPermissions": [perm]}))
                .response(json!({})),
            RoleDelete => b
                .target(role_t)
                .description(format!("{who} deleted role '{role}'"))
                .request(json!({"name": role}))
                .response(json!({})),
            RoleAssign => b
                .target(key_t).target(role_t)
                .description(format!("{who} assigned role '{role}' to key '{key}'"))
                .request(json!({"keyId": key_id, "roles": [role]}))
                .response(json!({})),
            RoleUnassign => b
                .target(key_t).target(role_t)
                .description(format!("{who} removed role '{role}' from key '{key}'"))
                .request(json!({"keyId": key_id, "roles": [role]}))
                .response(json!({})),
            RatelimitNamespaceCreate => b
                .target(ns_t)
                .description(format!("{who} created rate limit namespace '{ns}'"))
                .request(json!({"name": ns}))
                .response(json!({"namespaceId": "rlns"})),
            RatelimitUpdate => b
                .target(ns_t)
                .description(format!("{who} set the default limit of '{ns}' to {limit} per minute"))
                .request(json!({"namespace": ns, "limit": limit, "duration": 60000}))
                .response(json!({})),
            RatelimitOverrideSet => b
                .target(ns_t).target(Target::new("identifier", format!("user_{limit}"), format!("user_{limit}")))
                .description(format!("{who} set an override of {limit} per minute in '{ns}'"))
                .request(json!({"namespace": ns, "identifier": format!("user_{limit}"), "limit": limit, "duration": 60000, "async": false}))
                .response(json!({"overrideId": "ovr"})),
            WorkspaceMemberAdd => b
                .target(ws_t).target(member_t)
                .description(format!("{who} added {member} to the workspace"))
                .request(json!({"email": member_email, "role": "developer"}))
                .response(json!({"memberId": member_id})),
            WorkspaceMemberRemove => b
                .target(ws_t).target(member_t)
                .description(format!("{who} removed {member} from the workspace"))
                .request(json!({"memberId": member_id}))
                .response(json!({})),
            WorkspaceSettingsUpdate => b
                .target(ws_t)
                .description(format!("{who} changed the workspace settings"))
                .request(json!({"name": ws.id, "betaFeatures": {"rbac": true}, "auditLogRetentionDays": 90}))
                .response(json!({})),
        };
        let ip = format!(
            "{}.{}.{}.{}",
            [203, 198, 192, 100][rng.random_range(0..4)],
            rng.random_range(0..=255u8),
            rng.random_range(0..=255u8),
            rng.random_range(1..=254u8)
        );
        let b: AuditEventBuilder = b
            .actor(actor)
            .event_id(event_id)
            .time(time)
            .remote_ip(ip)
            .user_agent(ua)
            .location(ws.location);
        let b = if rng.random_bool(0.2) {
            b.correlation_id(rid(rng, "req_"))
        } else {
            b
        };
        let mut event = b.build_unchecked();
        if let Some(target) = self.cfg.target_bytes {
            pad(&mut event, target);
        }
        event
    }
}

impl Iterator for Synth {
    type Item = AuditEvent;

    fn next(&mut self) -> Option<AuditEvent> {
        Some(self.next_event())
    }
}

impl Workspace {
    fn generate(rng: &mut StdRng) -> Self {
        let id = rid(rng, "ws_");
        let users = (0..rng.random_range(3..9))
            .map(|_| {
                let first = *FIRST.choose(rng).unwrap_or(&"Alex");
                let last = *LAST.choose(rng).unwrap_or(&"Doe");
                let email = format!(
                    "{}.{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                );
                (rid(rng, "user_"), format!("{first} {last}"), email)
            })
            .collect();
        let root_keys = (0..rng.random_range(1..4))
            .map(|_| {
                let name = *ROOT_KEY_NAMES.choose(rng).unwrap_or(&"root");
                (rid(rng, "rk_"), format!("root key '{name}'"))
            })
            .collect();
        let apis = (0..rng.random_range(1..5))
            .map(|_| {
                (
                    rid(rng, "api_"),
                    (*API_NAMES.choose(rng).unwrap_or(&"api")).to_owned(),
                )
            })
            .collect();
        let location = LOCATIONS.choose(rng).unwrap_or(&"US");
        Self {
            id,
            users,
            root_keys,
            apis,
            location,
        }
    }
}

fn pick(rng: &mut StdRng, items: &[(String, String)]) -> (String, String) {
    items[rng.random_range(0..items.len())].clone()
}

/// `prefix` + 16 random base-36 characters.
fn rid(rng: &mut StdRng, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = String::with_capacity(prefix.len() + 16);
    s.push_str(prefix);
    for _ in 0..16 {
        s.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    s
}

/// Grows the request payload with a note so the event serializes to about `target` bytes.
fn pad(event: &mut AuditEvent, target: usize) {
    let len = serialized_len(event);
    // `,"note":""` adds 10 bytes around the padding itself.
    let Some(missing) = target.checked_sub(len + 10) else {
        return;
    };
    let json = event.request.as_json();
    if let Some(body) = json.strip_suffix('}') {
        const FILLER: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
        let note: String = FILLER.chars().cycle().take(missing).collect();
        let sep = if body == "{" { "" } else { "," };
        // The filler needs no escaping, so the result is JSON whenever the request was.
        if let Ok(p) = Payload::from_json(format!("{body}{sep}\"note\":\"{note}\"}}")) {
            event.request = p;
        }
    }
}
