//! The parts of a generated activity that depend on its type: the actor and the
//! type-specific fields that follow `type`.
//!
//! Shapes follow the docs (actor variants with their fields; flat type-specific fields such as
//! `claude_chat_id`, `filename`, `updates`, `resource_details`). Types are matched by family
//! (prefix) so every one of the 516 names gets plausible fields, and new names still work.

use jiff::Timestamp;

use super::world::{User, World};
use crate::jsonw::{Arr, Obj};
use crate::rng::Rng;
use crate::timefmt::format_utc;

/// Every actor variant the docs list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActorKind {
    User,
    Api,
    AdminApiKey,
    UnauthenticatedUser,
    Anthropic,
    ScimDirectorySync,
    System,
    ServiceAccount,
    FederatedIdentity,
    Federated,
    AttestedDevice,
}

impl ActorKind {
    #[cfg(test)]
    pub(crate) const ALL: [Self; 11] = [
        Self::User,
        Self::Api,
        Self::AdminApiKey,
        Self::UnauthenticatedUser,
        Self::Anthropic,
        Self::ScimDirectorySync,
        Self::System,
        Self::ServiceAccount,
        Self::FederatedIdentity,
        Self::Federated,
        Self::AttestedDevice,
    ];

    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Self::User => "user_actor",
            Self::Api => "api_actor",
            Self::AdminApiKey => "admin_api_key_actor",
            Self::UnauthenticatedUser => "unauthenticated_user_actor",
            Self::Anthropic => "anthropic_actor",
            Self::ScimDirectorySync => "scim_directory_sync_actor",
            Self::System => "system_actor",
            Self::ServiceAccount => "service_account_actor",
            Self::FederatedIdentity => "federated_identity_actor",
            Self::Federated => "federated_actor",
            Self::AttestedDevice => "attested_device_actor",
        }
    }

    /// Who plausibly does `activity_type`.
    pub(crate) fn for_type(activity_type: &str, rng: &mut Rng) -> Self {
        let t = activity_type;
        match t {
            "anthropic_access" | "cmek_preserve" => Self::Anthropic,
            "compliance_api_accessed" => Self::Api,
            "anonymous_mobile_login_attempted"
            | "sso_login_initiated"
            | "sso_login_failed"
            | "magic_link_login_initiated"
            | "magic_link_login_failed" => Self::UnauthenticatedUser,
            "platform_federated_authentication" => {
                if rng.chance(1, 2) {
                    Self::Federated
                } else {
                    Self::FederatedIdentity
                }
            }
            "platform_app_attest_authentication" => Self::AttestedDevice,
            "abuse_decision_received" | "inference_hooks_circuit_breaker_tripped" => Self::System,
            _ if t.starts_with("admin_api_key_") => Self::AdminApiKey,
            _ if t.starts_with("scim_") || t.starts_with("org_directory_") => {
                Self::ScimDirectorySync
            }
            _ if t.ends_with("_completed") || t == "subscription_renewed" => Self::System,
            _ if t.starts_with("sso_")
                || t.starts_with("magic_link_")
                || t.starts_with("phone_code_")
                || t.starts_with("step_up_")
                || t.contains("login")
                || t == "user_logged_out" =>
            {
                Self::User
            }
            _ => {
                let roll = rng.below(100);
                match roll {
                    0..80 => Self::User,
                    80..85 => Self::Api,
                    85..88 => Self::AdminApiKey,
                    88..91 => Self::ServiceAccount,
                    91..94 => Self::System,
                    94..96 => Self::FederatedIdentity,
                    96..98 => Self::Federated,
                    _ => Self::AttestedDevice,
                }
            }
        }
    }
}

/// What the writers need besides the random stream.
pub(crate) struct Ctx<'w> {
    pub(crate) world: &'w World,
    /// The organization of the activity, `None` for organization-less types.
    pub(crate) org: Option<usize>,
    /// The user acting (for user actors) or concerned.
    pub(crate) user: &'w User,
    pub(crate) created_at: Timestamp,
}

const IPS: [&str; 6] = [
    "192.0.2.34",
    "198.51.100.7",
    "203.0.113.250",
    "10.0.0.1",
    "2001:db8::8a2e:370:7334",
    "2001:db8:85a3::1",
];

const USER_AGENTS: [&str; 7] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Claude/1.4.2 (darwin; arm64)",
    "claude-cli/2.1.7 (external, cli)",
    "python-requests/2.32.3",
    "curl/8.7.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 \"ClaudeApp\"",
];

fn ip(rng: &mut Rng) -> &'static str {
    rng.pick_str(&IPS)
}

fn user_agent(rng: &mut Rng) -> Option<&'static str> {
    if rng.chance(1, 25) { None } else { Some(rng.pick_str(&USER_AGENTS)) }
}

/// Writes the fields of the `actor` object.
pub(crate) fn write_actor(a: &mut Obj<'_>, kind: ActorKind, ctx: &Ctx<'_>, rng: &mut Rng) {
    a.str("type", kind.type_name());
    match kind {
        ActorKind::User => {
            a.str("email_address", ctx.user.email)
                .str("user_id", &ctx.user.id)
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::Api => {
            a.str("api_key_id", rng.pick_str(&ctx.world.api_key_ids))
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::AdminApiKey => {
            a.str("admin_api_key_id", rng.pick_str(&ctx.world.admin_api_key_ids))
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::UnauthenticatedUser => {
            let email = if rng.chance(1, 4) {
                "unknown+sign-in@unrecognised.example"
            } else {
                ctx.user.email
            };
            a.str("unauthenticated_email_address", email)
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::Anthropic => {
            a.null("email_address");
        }
        ActorKind::ScimDirectorySync => {
            a.str("workos_event_id", &rng.prefixed_id("event_"))
                .str("directory_id", &rng.prefixed_id("directory_"))
                .str(
                    "idp_connection_type",
                    rng.pick_str(&[
                        "OktaSCIMV2",
                        "AzureSCIMV2_0",
                        "GoogleWorkspace",
                        "JumpCloudSCIM",
                        "GenericSCIMV2_0",
                    ]),
                );
        }
        ActorKind::System => {
            a.str(
                "service",
                rng.pick_str(&[
                    "billing",
                    "directory_sync",
                    "data_export",
                    "retention",
                    "inference_hooks",
                    "trust_and_safety",
                ]),
            );
        }
        ActorKind::ServiceAccount => {
            a.str("service_account_id", rng.pick_str(&ctx.world.service_account_ids))
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::FederatedIdentity => {
            let (issuer, subject) = *rng.pick(&[
                (
                    "https://token.actions.githubusercontent.com",
                    "repo:acme/agents:ref:refs/heads/main",
                ),
                ("https://accounts.google.com", "112233445566778899001"),
                (
                    "https://login.microsoftonline.com/9b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/v2.0",
                    "Zx9-Qw8_Er7Ty6Ui5Op4",
                ),
            ]);
            a.str("issuer", issuer)
                .str("subject", subject)
                .arr("audience", |arr| {
                    arr.str("https://api.anthropic.com");
                    if rng.chance(1, 3) {
                        arr.str("sts.anthropic.com");
                    }
                })
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::Federated => {
            let provider = rng.index(4);
            let subject = match provider {
                0 => "arn:aws:sts::123456789012:assumed-role/claude-agent/i-0abc123def456",
                1 => "7f3c1b2a-9d8e-4f60-a1b2-c3d4e5f60718",
                2 => "agent@acme-prod-4821.iam.gserviceaccount.com",
                _ => "svc|claude-batch-runner",
            };
            a.obj("provider", |p| match provider {
                0 => {
                    p.str("type", "aws")
                        .str("account_id", "123456789012")
                        .str("role_arn", "arn:aws:iam::123456789012:role/claude-agent");
                }
                1 => {
                    p.str("type", "azure")
                        .str("tenant_id", "9b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")
                        .str("client_id", "7f3c1b2a-9d8e-4f60-a1b2-c3d4e5f60718");
                }
                2 => {
                    p.str("type", "gcp")
                        .str("project_id", "acme-prod-4821")
                        .str("project_number", "418273645501");
                }
                _ => {
                    p.str("type", "oidc").str("issuer", "https://idp.acme.example/oauth2/default");
                }
            })
            .str("subject", subject)
            .str("ip_address", ip(rng))
            .opt_str("user_agent", user_agent(rng));
        }
        ActorKind::AttestedDevice => {
            a.str("external_client_id", &rng.prefixed_id("ext_client_"))
                .str("kid_hash", &rng.hex(64))
                .str("ip_address", ip(rng))
                .opt_str("user_agent", user_agent(rng));
        }
    }
}

const FILENAMES: [&str; 12] = [
    "Q3 résumé \"final\".pdf",
    "日本語の資料.docx",
    "notes\\draft\n2.txt",
    "🚀 launch plan.md",
    "budget_2026.xlsx",
    "Präsentation – Entwurf.pptx",
    "contract (signed).pdf",
    "customers.csv",
    "Screenshot 2026-04-01 at 10.02.11.png",
    "../../etc/passwd",
    "tab\tseparated.tsv",
    "Отчёт за квартал.pdf",
];

const PROJECT_NAMES: [&str; 7] = [
    "Customer Research",
    "Roadmap 2026 🚀",
    "Données clients",
    "プロジェクト X",
    "\"Quoted\" project",
    "Back\\slash ops",
    "Line\nbreak plans",
];

const MIME_TYPES: [&str; 6] = [
    "application/pdf",
    "text/plain",
    "text/markdown",
    "image/png",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

const SETTING_FIELDS: [&str; 8] = [
    "name",
    "description",
    "visibility",
    "enabled",
    "default_model",
    "allowed_domains",
    "retention_days",
    "sharing_policy",
];

const SETTING_VALUES: [&str; 9] = [
    "private",
    "organization",
    "public",
    "true",
    "false",
    "claude-sonnet-4-5",
    "30",
    "Équipe \"Nord\"",
    "example.com\\intranet",
];

/// Writes one `updates` array entry.
fn update_entry(arr: &mut Arr<'_>, rng: &mut Rng) {
    let field = *rng.pick(&SETTING_FIELDS);
    let old = *rng.pick(&SETTING_VALUES);
    let new = *rng.pick(&SETTING_VALUES);
    arr.obj(|u| {
        u.str("field", field).str("old_value", old).str("new_value", new);
    });
}

fn updates(o: &mut Obj<'_>, rng: &mut Rng) {
    let n = 1 + rng.index(3);
    o.arr("updates", |arr| {
        for _ in 0..n {
            update_entry(arr, rng);
        }
    });
}

fn target_user(o: &mut Obj<'_>, ctx: &Ctx<'_>, rng: &mut Rng) {
    let org = ctx.org.unwrap_or(0);
    let target = ctx.world.user_of(rng, org);
    o.str("target_user_id", &target.id)
        .str("target_name", target.name)
        .str("target_email_address", target.email);
}

/// The resource family of a type: its first word, or two for `claude_`/`platform_`/`org_`.
fn family(activity_type: &str) -> String {
    let words: Vec<&str> = activity_type.split('_').collect();
    let take = match words.first() {
        Some(&("claude" | "platform" | "org" | "ccr")) => 2,
        _ => 1,
    };
    words[..take.min(words.len())].join("_")
}

/// Writes the fields that follow `type` for `activity_type`.
pub(crate) fn write_details(o: &mut Obj<'_>, activity_type: &str, ctx: &Ctx<'_>, rng: &mut Rng) {
    let t = activity_type;
    let org_name = ctx.org.map(|i| ctx.world.orgs[i].name);
    match t {
        "cmek_preserve" => {
            let accessed = accessed_at(ctx.created_at, rng);
            o.str("accessed_at", &accessed)
                .obj("resource_details", |r| {
                    r.str("type", "conversation").str("id", &rng.prefixed_id("claude_chat_"));
                })
                .str("reason_code", "legal_hold");
        }
        "compliance_api_accessed" => {
            let status = *rng.pick(&[200, 200, 200, 200, 429, 400]);
            o.str("request_id", &rng.prefixed_id("req_"))
                .str(
                    "url",
                    "https://api.anthropic.com/v1/compliance/activities?limit=5000&order=asc",
                )
                .str("request_method", "GET")
                .null("request_body")
                .int("status_code", status);
        }
        _ if t.starts_with("claude_chat_snapshot_") => {
            o.str("claude_chat_id", &rng.prefixed_id("claude_chat_"))
                .str("claude_chat_snapshot_id", &rng.prefixed_id("claude_snapshot_"));
        }
        _ if t.starts_with("claude_chat_sync_source_") => {
            o.str("claude_chat_id", &rng.prefixed_id("claude_chat_")).obj("sync_source", |s| {
                s.str("type", rng.pick_str(&["gdrive", "github", "notion"]))
                    .str("id", &rng.prefixed_id("sync_"));
            });
        }
        _ if t.starts_with("claude_chat_") => {
            o.str("claude_chat_id", &rng.prefixed_id("claude_chat_"));
            if rng.chance(2, 3) {
                o.str("claude_project_id", &rng.prefixed_id("claude_proj_"));
            } else {
                o.null("claude_project_id");
            }
            if t.ends_with("_failed") {
                o.str(
                    "failure_reason",
                    rng.pick_str(&["permission_denied", "not_found", "deleted"]),
                );
            }
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("claude_artifact_") || t == "claude_published_artifact_deleted" => {
            o.str("claude_artifact_id", &rng.prefixed_id("claude_artifact_"))
                .str("claude_chat_id", &rng.prefixed_id("claude_chat_"));
            if t.contains("invite") {
                target_user(o, ctx, rng);
                o.str("role", rng.pick_str(&["viewer", "commenter", "editor"]));
            }
            if t.contains("comment") {
                o.str(
                    "comment_preview",
                    rng.pick_str(&["Looks good 👍", "Can we say \"soon\"?", "見直しが必要です"]),
                );
            }
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("claude_file_") => {
            o.str("claude_file_id", &rng.prefixed_id("claude_file_"))
                .str("filename", rng.pick_str(&FILENAMES));
            if t == "claude_file_uploaded" {
                o.str("mime_type", rng.pick_str(&MIME_TYPES))
                    .int("size_bytes", 1 + rng.below(25_000_000) as i64);
            }
        }
        _ if t.starts_with("claude_project_document_") || t.starts_with("claude_project_file_") => {
            o.str("claude_project_id", &rng.prefixed_id("claude_proj_"));
            if t.ends_with("_audit_truncated") {
                o.int("deleted_count", 1000 + rng.below(9000) as i64).int("audited_count", 1000);
            } else {
                let id_key = if t.starts_with("claude_project_document_") {
                    "claude_project_document_id"
                } else {
                    "claude_file_id"
                };
                let prefix =
                    if id_key == "claude_file_id" { "claude_file_" } else { "claude_doc_" };
                o.str(id_key, &rng.prefixed_id(prefix)).str("filename", rng.pick_str(&FILENAMES));
            }
        }
        _ if t.starts_with("claude_project_") => {
            o.str("claude_project_id", &rng.prefixed_id("claude_proj_"))
                .str("claude_project_name", rng.pick_str(&PROJECT_NAMES));
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("group_") => {
            o.str("group_id", &rng.prefixed_id("group_")).str(
                "group_name",
                rng.pick_str(&["Engineering", "Légal", "営業", "All \"Staff\""]),
            );
            if t.contains("member") {
                target_user(o, ctx, rng);
            }
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("org_user_")
            || t.starts_with("org_join_")
            || t.starts_with("scim_user_")
            || t == "primary_owner_transferred"
            || t == "claude_user_role_updated"
            || t == "claude_user_seat_tier_updated" =>
        {
            target_user(o, ctx, rng);
            o.str("role", rng.pick_str(&["user", "admin", "owner", "primary_owner"]));
            if t.ends_with("_updated") || t.ends_with("_transferred") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("rbac_role_") || t.starts_with("role_assignment_") => {
            o.str("role_id", &rng.prefixed_id("role_"))
                .str("role_name", rng.pick_str(&["Auditor", "Billing admin", "Développeur"]));
            if t.contains("assign") || t.contains("grant") {
                target_user(o, ctx, rng);
            }
        }
        _ if t.starts_with("platform_workspace_") => {
            o.str("workspace_id", &rng.prefixed_id("wrkspc_"))
                .str("workspace_name", rng.pick_str(&["Default", "Prod – EU", "研究"]));
            if t.contains("member") {
                target_user(o, ctx, rng);
            }
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.contains("api_key") => {
            o.str("api_key_id", &rng.prefixed_id("apikey_"))
                .str("api_key_name", rng.pick_str(&["ci-bot", "Compliance export", "clé de test"]));
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("sso_")
            || t.starts_with("magic_link_")
            || t.contains("login")
            || t.starts_with("step_up_")
            || t.starts_with("phone_code_") =>
        {
            o.str(
                "auth_method",
                rng.pick_str(&["sso", "magic_link", "google", "apple", "passkey"]),
            );
            if t.ends_with("_failed") {
                o.str(
                    "failure_reason",
                    rng.pick_str(&["expired_link", "idp_error: \"invalid_grant\"", "mfa_required"]),
                );
            }
        }
        _ if t.starts_with("session_") || t.contains("_session_") => {
            o.str("session_id", &rng.prefixed_id("session_"));
            if t.ends_with("_updated") {
                updates(o, rng);
            }
        }
        _ if t.starts_with("mcp_") => {
            o.str("mcp_server_id", &rng.prefixed_id("mcpsrv_")).str(
                "mcp_server_url",
                rng.pick_str(&[
                    "https://mcp.acme.example/sse",
                    "https://tools.example.com/mcp?team=a&b=c",
                ]),
            );
        }
        _ if t.starts_with("desktop_extension_") => {
            o.str("extension_id", &rng.prefixed_id("dxt_"))
                .str("extension_name", rng.pick_str(&["Filesystem", "Notes ✏️", "Jira"]))
                .str("extension_version", rng.pick_str(&["1.0.0", "2.3.1-beta"]));
        }
        _ if t.starts_with("subscription_")
            || t.starts_with("seat_")
            || t.starts_with("prepaid_")
            || t.starts_with("extra_usage_")
            || t.contains("spend_limit")
            || t.contains("billing") =>
        {
            o.str("plan", rng.pick_str(&["enterprise", "team"]))
                .int("seat_count", 5 + rng.below(500) as i64)
                .str("currency", "USD")
                .int("amount_cents", rng.below(5_000_000) as i64);
        }
        _ => {
            let family = family(t);
            o.obj("resource_details", |r| {
                r.str("type", &family).str("id", &rng.prefixed_id(&format!("{family}_")));
                if let Some(name) = org_name {
                    r.str("organization_name", name);
                }
            });
            if t.ends_with("_toggled") {
                o.bool("enabled", rng.chance(1, 2));
            }
            if t.ends_with("_updated") || t.ends_with("_changed") {
                updates(o, rng);
            }
        }
    }
}

/// The fields of an `anthropic_access` record after `actor`, in the docs' example order.
pub(crate) fn write_anthropic_access_tail(o: &mut Obj<'_>, rng: &mut Rng) {
    let resource = *rng.pick(&["message", "conversation", "file", "project"]);
    o.obj("resource_details", |r| {
        r.str("type", resource).str("id", &format!("msg_{}", rng.base62(8)));
    })
    .str(
        "accessor_department",
        rng.pick_str(&["Safeguards", "Trust & Safety", "Customer Support", "Legal"]),
    )
    .str(
        "reason_code",
        rng.pick_str(&[
            "safety_review",
            "customer_support_request",
            "legal_obligation",
            "incident_response",
        ]),
    );
}

/// When Anthropic accessed the data: up to two days before the record became visible.
pub(crate) fn accessed_at(created_at: Timestamp, rng: &mut Rng) -> String {
    let back = jiff::SignedDuration::from_secs(rng.below(2 * 24 * 3600) as i64 + 1);
    let at = created_at.saturating_sub(back).unwrap_or(created_at);
    format_utc(at, 6)
}

/// A large payload (20 to 60 KB): a long `updates` array or a long description.
pub(crate) fn write_large(o: &mut Obj<'_>, rng: &mut Rng) {
    let target = 20_000 + rng.index(40_000);
    if rng.chance(1, 2) {
        // About 110 bytes per entry.
        let entries = target / 110;
        o.arr("bulk_updates", |arr| {
            for _ in 0..entries {
                update_entry(arr, rng);
            }
        });
    } else {
        const LINE: &str = "Quarterly review — “naïve” café notes, 日本語のメモ, emoji 🎉, a \"quote\" and a back\\slash.\n";
        let mut description = String::with_capacity(target + LINE.len());
        while description.len() < target {
            description.push_str(LINE);
        }
        o.str("description", &description);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_name_the_resource() {
        assert_eq!(family("claude_chat_created"), "claude_chat");
        assert_eq!(family("tunnel_created"), "tunnel");
        assert_eq!(family("org_sso_toggled"), "org_sso");
    }

    #[test]
    fn access_transparency_types_are_done_by_anthropic() {
        let mut rng = Rng::stream(1, "t");
        assert_eq!(ActorKind::for_type("anthropic_access", &mut rng), ActorKind::Anthropic);
        assert_eq!(ActorKind::for_type("compliance_api_accessed", &mut rng), ActorKind::Api);
    }
}
