//! The configuration contract: Lambda environment → one validated [`Config`].
//!
//! The variable names and defaults here are the public interface (design.md, the README's table and
//! template.yaml say the same; a test keeps the three in agreement). Parsing never stops at the first
//! problem: every bad or missing variable is collected so the operator fixes them in one go, and it
//! happens before any I/O. [`Config::from_lookup`] takes a lookup function so tests never touch the
//! process environment.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use url::Url;

/// One row of the configuration contract: the variable, its default (`None` = required) and, for
/// numbers, the accepted range.
pub struct Variable {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub range: Option<(u64, u64)>,
}

/// The API keeps six years of activities; looking back further finds nothing.
const MAX_LOOKBACK_HOURS: u64 = 6 * 366 * 24;
/// The API allows 600 requests a minute per parent organization, shared by every tool.
const API_REQUESTS_PER_MINUTE: u64 = 600;
const SETTLE_RANGE: (u64, u64) = (0, 86_400);
const OVERLAP_RANGE: (u64, u64) = (0, 7 * 86_400);
const LOOKBACK_RANGE: (u64, u64) = (1, MAX_LOOKBACK_HOURS);
const RPM_RANGE: (u64, u64) = (1, API_REQUESTS_PER_MINUTE);

pub(crate) const fn text(name: &'static str, default: Option<&'static str>) -> Variable {
    Variable { name, default, range: None }
}

pub(crate) const fn number(
    name: &'static str,
    default: &'static str,
    range: (u64, u64),
) -> Variable {
    Variable { name, default: Some(default), range: Some(range) }
}

/// Every variable of the contract, in the README's order.
pub const VARIABLES: &[Variable] = &[
    text("API_KEY_SECRET_ID", None),
    text("STATE_TABLE", None),
    text("OUTPUT_BUCKET", None),
    text("OUTPUT_PREFIX", Some("anthropic/activity/")),
    text("ORGANIZATION_IDS", Some("")),
    text("METRIC_NAMESPACE", Some("AnthropicCompliance")),
    text("API_BASE_URL", Some("https://api.anthropic.com")),
    number("SETTLE_SECONDS", "120", SETTLE_RANGE),
    number("OVERLAP_SECONDS", "900", OVERLAP_RANGE),
    number("INITIAL_LOOKBACK_HOURS", "168", LOOKBACK_RANGE),
    number("MAX_REQUESTS_PER_MINUTE", "60", RPM_RANGE),
];

/// The validated configuration of the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub api_key_secret_id: String,
    pub state_table: String,
    pub output_bucket: String,
    /// Empty, or ends with `/`; no segment starts with `_` or `.` (those mark non-activity objects).
    pub output_prefix: String,
    pub organization_ids: Vec<String>,
    pub metric_namespace: String,
    pub api_base_url: Url,
    pub settle: Duration,
    pub overlap: Duration,
    pub initial_lookback: Duration,
    pub max_requests_per_minute: u32,
}

/// Every problem found in the environment, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration problem(s): ", self.problems.len())?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.variable, p.message)?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the contract's variables through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut p = Parser::new(lookup, VARIABLES);
        let api_key_secret_id = p.required("API_KEY_SECRET_ID");
        let state_table = p.required("STATE_TABLE");
        let output_bucket = p.bucket("OUTPUT_BUCKET");
        let output_prefix = p.prefix("OUTPUT_PREFIX");
        let organization_ids = p.organization_ids("ORGANIZATION_IDS");
        let metric_namespace = p.namespace("METRIC_NAMESPACE");
        let api_base_url = p.base_url("API_BASE_URL");
        let settle = p.number("SETTLE_SECONDS", SETTLE_RANGE);
        let overlap = p.number("OVERLAP_SECONDS", OVERLAP_RANGE);
        let lookback_hours = p.number("INITIAL_LOOKBACK_HOURS", LOOKBACK_RANGE);
        let max_rpm = p.number("MAX_REQUESTS_PER_MINUTE", RPM_RANGE);
        match api_base_url {
            Some(api_base_url) if p.problems.is_empty() => Ok(Config {
                api_key_secret_id,
                state_table,
                output_bucket,
                output_prefix,
                organization_ids,
                metric_namespace,
                api_base_url,
                settle: Duration::from_secs(settle),
                overlap: Duration::from_secs(overlap),
                initial_lookback: Duration::from_secs(3600 * lookback_hours),
                max_requests_per_minute: u32::try_from(max_rpm).unwrap_or(u32::MAX),
            }),
            _ => Err(ConfigError { problems: p.problems }),
        }
    }
}

/// Collects every problem; values it returns alongside a problem are never used. Shared with
/// the detector's configuration ([`crate::detector::config`]), which has its own table.
pub(crate) struct Parser<L> {
    lookup: L,
    variables: &'static [Variable],
    pub(crate) problems: Vec<Problem>,
}

impl<L: Fn(&str) -> Option<String>> Parser<L> {
    pub(crate) fn new(lookup: L, variables: &'static [Variable]) -> Parser<L> {
        Parser { lookup, variables, problems: Vec::new() }
    }

    pub(crate) fn raw(&self, variable: &'static str) -> Option<String> {
        let value = (self.lookup)(variable).map(|v| v.trim().to_owned());
        match value {
            Some(v) if !v.is_empty() => Some(v),
            _ => self
                .variables
                .iter()
                .find(|v| v.name == variable)
                .and_then(|v| v.default)
                .map(str::to_owned),
        }
    }

    pub(crate) fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(Problem { variable, message: message.into() });
    }

    pub(crate) fn required(&mut self, variable: &'static str) -> String {
        match self.raw(variable) {
            Some(v) => v,
            None => {
                self.problem(variable, "is required and not set");
                String::new()
            }
        }
    }

    pub(crate) fn bucket(&mut self, variable: &'static str) -> String {
        let name = self.required(variable);
        if !name.is_empty() && name.contains(['/', ':']) {
            self.problem(variable, format!("must be a bucket name, not a path or ARN: {name:?}"));
        }
        name
    }

    pub(crate) fn prefix(&mut self, variable: &'static str) -> String {
        let mut prefix = self.raw(variable).unwrap_or_default();
        if prefix.starts_with('/') {
            self.problem(variable, "must not start with '/' (S3 keys have no leading slash)");
        }
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if prefix.split('/').any(|s| s.starts_with(['_', '.'])) {
            self.problem(
                variable,
                "no segment may start with '_' or '.': query engines skip such paths as non-data",
            );
        }
        prefix
    }

    fn organization_ids(&mut self, variable: &'static str) -> Vec<String> {
        let raw = self.raw(variable).unwrap_or_default();
        let ids: Vec<String> =
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        for id in &ids {
            if !(id.starts_with("org_") || is_uuid(id)) {
                self.problem(variable, format!("{id:?} is neither an org_… id nor a UUID"));
            }
        }
        ids
    }

    pub(crate) fn namespace(&mut self, variable: &'static str) -> String {
        let ns = self.raw(variable).unwrap_or_default();
        if ns.starts_with(':') || ns.starts_with("AWS/") || ns.len() > 255 {
            self.problem(
                variable,
                "must be a custom CloudWatch namespace (not AWS/…, ≤ 255 chars)",
            );
        }
        ns
    }

    fn base_url(&mut self, variable: &'static str) -> Option<Url> {
        let raw = self.raw(variable).unwrap_or_default();
        let url = match Url::parse(&raw) {
            Ok(url) => url,
            Err(e) => {
                self.problem(variable, format!("is not a URL ({e}): {raw:?}"));
                return None;
            }
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => self.problem(
                variable,
                "plain http:// is refused except for loopback hosts: the API key would travel in clear",
            ),
            other => self.problem(variable, format!("scheme {other:?} is not https")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem(variable, "must not carry a query or fragment");
        }
        Some(url)
    }

    pub(crate) fn number(&mut self, variable: &'static str, (min, max): (u64, u64)) -> u64 {
        let raw = self.raw(variable).unwrap_or_default();
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                self.problem(variable, format!("{n} is outside {min}..={max}"));
                min
            }
            Err(_) => {
                self.problem(variable, format!("expected a whole number, got {raw:?}"));
                min
            }
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const MINIMAL: &[(&str, &str)] =
        &[("API_KEY_SECRET_ID", "s"), ("STATE_TABLE", "t"), ("OUTPUT_BUCKET", "b")];

    #[test]
    fn minimal_environment_takes_every_default() {
        // GIVEN only the required variables WHEN parsed THEN every default of the contract applies
        let c = Config::from_lookup(env(MINIMAL)).unwrap();
        assert_eq!(c.output_prefix, "anthropic/activity/");
        assert!(c.organization_ids.is_empty());
        assert_eq!(c.metric_namespace, "AnthropicCompliance");
        assert_eq!(c.api_base_url.as_str(), "https://api.anthropic.com/");
        assert_eq!(c.settle, Duration::from_secs(120));
        assert_eq!(c.overlap, Duration::from_secs(900));
        assert_eq!(c.initial_lookback, Duration::from_secs(168 * 3600));
        assert_eq!(c.max_requests_per_minute, 60);
    }

    #[test]
    fn every_bad_variable_is_reported_together() {
        // GIVEN an environment with three missing and four bad variables
        let e = Config::from_lookup(env(&[
            ("SETTLE_SECONDS", "soon"),
            ("OVERLAP_SECONDS", "-1"),
            ("MAX_REQUESTS_PER_MINUTE", "601"),
            ("API_BASE_URL", "http://api.example.com"),
        ]))
        .unwrap_err();
        // THEN each is named once
        let named: Vec<&str> = e.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            named,
            [
                "API_KEY_SECRET_ID",
                "STATE_TABLE",
                "OUTPUT_BUCKET",
                "API_BASE_URL",
                "SETTLE_SECONDS",
                "OVERLAP_SECONDS",
                "MAX_REQUESTS_PER_MINUTE"
            ]
        );
        assert!(e.to_string().starts_with("7 configuration problem(s): API_KEY_SECRET_ID"));
    }

    #[test]
    fn plain_http_is_allowed_for_loopback_only() {
        for (url, ok) in [
            ("http://127.0.0.1:8080", true),
            ("http://localhost:1", true),
            ("http://[::1]:9", true),
            ("http://10.0.0.1", false),
            ("ftp://127.0.0.1", false),
            ("https://api.anthropic.com", true),
        ] {
            let mut vars = MINIMAL.to_vec();
            vars.push(("API_BASE_URL", url));
            assert_eq!(Config::from_lookup(env(&vars)).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn prefix_is_normalised_and_must_not_hide_data() {
        let mut vars = MINIMAL.to_vec();
        vars.push(("OUTPUT_PREFIX", "logs/anthropic"));
        assert_eq!(Config::from_lookup(env(&vars)).unwrap().output_prefix, "logs/anthropic/");
        for bad in ["_logs/", "logs/.hidden/", "/logs/"] {
            let mut vars = MINIMAL.to_vec();
            vars.push(("OUTPUT_PREFIX", bad));
            assert!(Config::from_lookup(env(&vars)).is_err(), "{bad}");
        }
    }

    #[test]
    fn organization_ids_are_split_trimmed_and_checked() {
        let mut vars = MINIMAL.to_vec();
        vars.push(("ORGANIZATION_IDS", " org_a, 5b236db4-3fb4-4bf3-a560-b5e266038a15 ,"));
        let c = Config::from_lookup(env(&vars)).unwrap();
        assert_eq!(c.organization_ids, ["org_a", "5b236db4-3fb4-4bf3-a560-b5e266038a15"]);
        let mut vars = MINIMAL.to_vec();
        vars.push(("ORGANIZATION_IDS", "acme"));
        assert!(Config::from_lookup(env(&vars)).is_err());
    }
}
