//! The `compliance_api_accessed` activity the feed records for each authenticated request.
//!
//! The real API records every Compliance API call in the feed itself, so a collector always
//! finds its own earlier calls there. Shape as the docs' example: organization-less,
//! `api_actor`, then `request_id`, `url`, `request_method`, `request_body`, `status_code`.
//! `created_at` has microseconds, like the docs' newer examples.

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::jsonw::{Escaping, Obj};
use crate::rng::base62_fixed;
use crate::timefmt::{format_utc, truncate};

/// What one served request looked like.
pub(crate) struct AccessedRequest<'a> {
    pub(crate) activity_id: &'a str,
    pub(crate) at: Timestamp,
    pub(crate) api_key_id: &'a str,
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) request_id: &'a str,
    pub(crate) url: &'a str,
    pub(crate) status: u16,
}

/// The raw JSON of the activity recording `request`.
pub(crate) fn accessed_activity(request: &AccessedRequest<'_>) -> String {
    let at = truncate(request.at, 6);
    let mut out = String::with_capacity(512);
    let mut o = Obj::open(&mut out, Escaping::Minimal);
    o.str("id", request.activity_id)
        .str("created_at", &format_utc(at, 6))
        .null("organization_id")
        .null("organization_uuid")
        .obj("actor", |a| {
            a.str("type", "api_actor")
                .str("api_key_id", request.api_key_id)
                .str("ip_address", "127.0.0.1")
                .opt_str("user_agent", request.user_agent);
        })
        .str("type", "compliance_api_accessed")
        .str("request_id", request.request_id)
        .str("url", request.url)
        .str("request_method", "GET")
        .null("request_body")
        .int("status_code", i64::from(request.status));
    o.close();
    out
}

/// The stable `apikey_…` id of a key (the key itself never appears in the feed).
pub(crate) fn api_key_id(key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"compliance-sim api key id")
        .chain_update(key.as_bytes())
        .finalize();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&digest[..8]);
    lo.copy_from_slice(&digest[8..16]);
    format!(
        "apikey_{}{}",
        base62_fixed(u64::from_le_bytes(hi), 11),
        base62_fixed(u64::from_le_bytes(lo), 11)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_activity_has_the_documented_shape() {
        // GIVEN a served request
        let request = AccessedRequest {
            activity_id: "activity_x",
            at: "2026-04-01T00:00:00.1234567Z".parse().unwrap(),
            api_key_id: "apikey_1",
            user_agent: Some("collector/1.0"),
            request_id: "req_1",
            url: "http://127.0.0.1:1/v1/compliance/activities?limit=5",
            status: 200,
        };
        // WHEN recorded
        let raw = accessed_activity(&request);
        // THEN it matches the docs' example shape, with microseconds
        assert_eq!(
            raw,
            r#"{"id":"activity_x","created_at":"2026-04-01T00:00:00.123456Z","organization_id":null,"organization_uuid":null,"actor":{"type":"api_actor","api_key_id":"apikey_1","ip_address":"127.0.0.1","user_agent":"collector/1.0"},"type":"compliance_api_accessed","request_id":"req_1","url":"http://127.0.0.1:1/v1/compliance/activities?limit=5","request_method":"GET","request_body":null,"status_code":200}"#
        );
    }

    #[test]
    fn api_key_ids_are_stable_and_do_not_reveal_the_key() {
        let id = api_key_id("sk-ant-api01-simulator-test-key");
        assert_eq!(id, api_key_id("sk-ant-api01-simulator-test-key"));
        assert_ne!(id, api_key_id("sk-ant-api01-other"));
        assert!(id.starts_with("apikey_") && !id.contains("sk-ant"));
        assert_eq!(id.len(), "apikey_".len() + 22);
    }
}
