//! The rules a detector evaluates: the shipped packs it is configured with, plus the user's own
//! Sigma files under `CUSTOM_RULES_PREFIX` in the bucket, loaded at cold start and again when
//! the load is older than [`RULES_TTL`] (as the collector caches its key).
//!
//! A bad file is skipped, named in a log line with the parser's error, and counted
//! (`RulesInvalid`); it never stops the shipped rules. A bucket that cannot be listed keeps the
//! last good load (or the shipped rules alone at a cold start), is logged and counted as a
//! detector error, and is tried again at the next invocation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use crate::archive::{ObjectReader, SinkError};
use crate::detect::packs::{self, PackSelection};
use crate::detect::rules::{CUSTOM_PACK, RuleSet, RuleSource};
use crate::error::error_chain;

/// How long a load of the custom rules is used.
pub const RULES_TTL: Duration = Duration::from_secs(300);

/// One load of the rules.
#[derive(Debug)]
pub struct LoadedRules {
    pub rules: RuleSet,
    /// `<file>: <error>` for each file skipped.
    pub invalid: Vec<String>,
    /// Custom files loaded (valid ones).
    pub custom: usize,
    pub loaded_at: Timestamp,
    /// The custom rules could not be listed or read: this load may miss some.
    pub degraded: bool,
}

#[derive(Default)]
pub struct RulesCache {
    current: Mutex<Option<Arc<LoadedRules>>>,
}

impl RulesCache {
    /// The rules to evaluate now: the cached load while fresh, else a new one; and whether the
    /// custom rules could not be read this time (a detector error to count).
    pub async fn get(
        &self,
        archive: &impl ObjectReader,
        packs: &PackSelection,
        custom_prefix: &str,
        now: Timestamp,
    ) -> (Arc<LoadedRules>, bool) {
        let cached = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(cached) = &cached {
            let age = now.duration_since(cached.loaded_at);
            if !cached.degraded
                && age < jiff::SignedDuration::try_from(RULES_TTL).unwrap_or_default()
            {
                return (cached.clone(), false);
            }
        }
        let loaded = match custom_files(archive, custom_prefix).await {
            Ok(files) => Arc::new(load(packs, &files, now, false)),
            Err(e) => {
                tracing::error!(prefix = custom_prefix, error = %error_chain(&e), "cannot read the custom rules; evaluating without them until they can be read");
                match cached {
                    Some(previous) if !previous.degraded => return (previous, true),
                    _ => Arc::new(load(packs, &[], now, true)),
                }
            }
        };
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded.clone());
        let failed = loaded.degraded;
        (loaded, failed)
    }
}

/// Every `.yml`/`.yaml` under `prefix`, as (key, text); a file that is not UTF-8 comes back as
/// text the parser refuses, so it is reported like any other bad rule.
async fn custom_files(
    archive: &impl ObjectReader,
    prefix: &str,
) -> Result<Vec<(String, String)>, SinkError> {
    let mut files = Vec::new();
    for key in archive.list(prefix).await? {
        if !(key.ends_with(".yml") || key.ends_with(".yaml")) {
            continue;
        }
        if let Some(body) = archive.get(&key).await? {
            let text = String::from_utf8(body)
                .unwrap_or_else(|_| "# not UTF-8: not a Sigma rule file\n[".to_owned());
            files.push((key, text));
        }
    }
    Ok(files)
}

/// The shipped packs chosen, then the custom files, into one rule set; bad files logged.
pub fn load(
    packs: &PackSelection,
    custom: &[(String, String)],
    now: Timestamp,
    degraded: bool,
) -> LoadedRules {
    let shipped = packs::shipped(packs);
    let sources = packs::sources(&shipped)
        .into_iter()
        .chain(custom.iter().map(|(file, yaml)| RuleSource { pack: CUSTOM_PACK, file, yaml }));
    let (rules, errors) = RuleSet::load(sources);
    let invalid: Vec<String> = errors
        .iter()
        .map(|e| {
            tracing::error!(file = e.file(), error = %error_chain(e), "rule skipped: it does not load");
            error_chain(e)
        })
        .collect();
    let custom = custom.len().saturating_sub(
        errors.iter().filter(|e| custom.iter().any(|(f, _)| f == e.file())).count(),
    );
    tracing::info!(rules = rules.len(), custom, invalid = invalid.len(), "rules loaded");
    LoadedRules { rules, invalid, custom, loaded_at: now, degraded }
}
