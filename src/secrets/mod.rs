//! The API key: where it comes from ([`SecretSource`]), how a secret string becomes an [`ApiKey`],
//! and a cache that lives across warm invocations for at most [`KEY_CACHE_TTL`], so a rotated key
//! is picked up within minutes without a redeploy.
//!
//! The key never appears in a log line, an error or a `Debug` output: [`ApiKey`] has no `Display`
//! and its `Debug` is redacted; errors about a secret quote its shape, never its value.

pub mod secretsmanager;

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The value a freshly deployed stack puts in the secret it creates; the README tells the user to
/// replace it with `aws secretsmanager put-secret-value`.
pub const PLACEHOLDER: &str = "REPLACE_ME_WITH_YOUR_ANTHROPIC_COMPLIANCE_API_KEY";

/// How long a key read from the secret is reused by warm invocations.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// A Compliance API key. Redacted in `Debug`, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    text: String,
}

impl ApiKey {
    /// The key itself, for looking at its kind and for the feed's adapter to send; the only way
    /// to read it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The port the key is read through: the secret's string as stored.
pub trait SecretSource: Send + Sync {
    fn secret_string(&self) -> impl Future<Output = Result<String, SecretError>> + Send;
}

/// What an operator does about a secret that is missing or holds no key, and about one the
/// function may not read: the one text both the error's message and verify's remedy give.
pub const SECRET_STORE: &str = "store the key with `aws secretsmanager put-secret-value --secret-id <API_KEY_SECRET_ID> --secret-string <key>` (or fix API_KEY_SECRET_ID)";
pub const SECRET_GRANT: &str =
    "grant secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the API key secret {secret_id:?} does not exist; {SECRET_STORE}")]
    NotFound { secret_id: String },
    #[error("not allowed to read the API key secret {secret_id:?}; {SECRET_GRANT}")]
    AccessDenied {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot read the API key secret {secret_id:?}")]
    Unavailable {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the API key secret holds no SecretString (binary secrets are not supported)")]
    NoString,
    #[error(
        "the API key secret is empty; store the key with `aws secretsmanager put-secret-value`"
    )]
    Empty,
    #[error(
        "the API key secret still holds the placeholder; store your Compliance Access Key or Admin API key with `aws secretsmanager put-secret-value --secret-id <id> --secret-string <key>`"
    )]
    Placeholder,
    #[error(
        "the API key secret is JSON but has no string field \"api_key\" (fields present: {fields})"
    )]
    JsonWithoutKey { fields: String },
    #[error("the API key secret is not a plausible key: {reason}")]
    Malformed { reason: &'static str },
}

/// Turns a stored secret string into a key: the key itself, or JSON `{"api_key": "..."}`.
pub fn parse_secret(secret: &str) -> Result<ApiKey, SecretError> {
    let trimmed = secret.trim();
    let key = if trimmed.starts_with('{') { key_from_json(trimmed)? } else { trimmed.to_owned() };
    if key.is_empty() {
        return Err(SecretError::Empty);
    }
    if key == PLACEHOLDER {
        return Err(SecretError::Placeholder);
    }
    if key.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(SecretError::Malformed {
            reason: "contains whitespace or non-ASCII characters",
        });
    }
    // Visible ASCII only: always a valid HTTP header value.
    Ok(ApiKey { text: key })
}

/// The `api_key` field of a JSON secret.
fn key_from_json(secret: &str) -> Result<String, SecretError> {
    let value: serde_json::Value = serde_json::from_str(secret)
        .map_err(|_| SecretError::Malformed { reason: "starts with '{' but is not valid JSON" })?;
    match value.get("api_key").and_then(serde_json::Value::as_str) {
        Some(k) => Ok(k.trim().to_owned()),
        None => {
            let fields = value
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Err(SecretError::JsonWithoutKey { fields })
        }
    }
}

/// Reuses the key across warm invocations for [`KEY_CACHE_TTL`]; `now` is passed in.
#[derive(Default)]
pub struct KeyCache {
    cached: Mutex<Option<(ApiKey, Timestamp)>>,
}

impl KeyCache {
    /// The cached key if fresh, else a new read from `source`.
    pub async fn get(
        &self,
        source: &impl SecretSource,
        now: Timestamp,
    ) -> Result<ApiKey, SecretError> {
        if let Some((key, read_at)) = self.lock().as_ref()
            && now.duration_since(*read_at)
                < SignedDuration::try_from(KEY_CACHE_TTL).unwrap_or_default()
            && now >= *read_at
        {
            return Ok(key.clone());
        }
        let key = parse_secret(&source.secret_string().await?)?;
        *self.lock() = Some((key.clone(), now));
        Ok(key)
    }

    /// Forgets the key, e.g. after the API rejected it, so the next run reads the secret again.
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(ApiKey, Timestamp)>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize, String);
    impl SecretSource for Counting {
        async fn secret_string(&self) -> Result<String, SecretError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(self.1.clone())
        }
    }

    #[test]
    fn plain_and_json_secrets_give_the_key() {
        assert_eq!(parse_secret(" sk-ant-api01-abc\n").unwrap().as_str(), "sk-ant-api01-abc");
        assert_eq!(
            parse_secret(r#"{"api_key":"sk-ant-admin01-x","note":"n"}"#).unwrap().as_str(),
            "sk-ant-admin01-x"
        );
    }

    #[test]
    fn unusable_secrets_are_named_without_their_value() {
        assert!(matches!(parse_secret("  "), Err(SecretError::Empty)));
        assert!(matches!(parse_secret(PLACEHOLDER), Err(SecretError::Placeholder)));
        let e = parse_secret(r#"{"key":"sk-ant-secret-value"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the API key secret is JSON but has no string field \"api_key\" (fields present: key)"
        );
        let e = parse_secret("sk-ant one").unwrap_err();
        assert!(!e.to_string().contains("sk-ant"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(
            format!("{:?}", parse_secret("sk-ant-api01-zzz").unwrap()),
            "ApiKey(<redacted>)"
        );
    }

    #[tokio::test]
    async fn the_cache_rereads_after_five_minutes() {
        // GIVEN a cache and a source
        let cache = KeyCache::default();
        let source = Counting(AtomicUsize::new(0), "sk-ant-api01-k".into());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        // WHEN read at t0, t0+4m59s and t0+5m
        cache.get(&source, t0).await.unwrap();
        cache.get(&source, t0 + SignedDuration::from_secs(299)).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        cache.get(&source, t0 + SignedDuration::from_secs(300)).await.unwrap();
        // THEN the secret was read twice
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
        cache.invalidate();
        cache.get(&source, t0 + SignedDuration::from_secs(301)).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), 3);
    }
}
