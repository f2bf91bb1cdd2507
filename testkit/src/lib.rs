//! Test tooling for the collector: real protocol peers on 127.0.0.1, no Docker, no network.
//!
//! - [`moto`]: the AWS emulator (moto server behind a Smithy RPC v2 CBOR front for CloudWatch), one
//!   process per test binary, started from the project virtualenv (`make venv`).
//! - [`aws`]: SDK clients pointed at it and the fixtures tests need (buckets, tables, secrets,
//!   reading back objects, state items and metrics).
//! - [`fault_proxy`]: a fault-injecting reverse proxy in front of the emulator: AWS-shaped errors,
//!   delays and dropped answers per service and operation, scripted or seeded-random.
//! - [`lambda`]: a Lambda Runtime API emulator that drives a function binary the way Lambda does
//!   (cold start, warm reuse, deadline, kill on timeout) and captures its logs.
//! - [`pubsub`]: SNS topics, SQS queues and the bucket notification between them (the detector's
//!   wiring), and reading back what a queue received.
//! - [`event_source`]: Lambda's SQS event source mapping, played: receive, invoke through
//!   [`lambda`], delete what succeeded (ReportBatchItemFailures), let the rest come back.
//!
//! Tests share one emulator and isolate themselves with [`unique_name`]d resources.

pub mod aws;
pub mod event_source;
pub mod fault_proxy;
pub mod lambda;
pub mod moto;
pub mod pubsub;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything that can go wrong while setting up or inspecting a test environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project virtualenv with moto is missing.
    #[error(
        "{python} not found: run `make test` or `make venv` first: it creates .venv with moto (tools/requirements.txt)"
    )]
    VenvMissing { python: PathBuf },
    /// A child process could not be started.
    #[error("could not start {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The emulator started but did not say where it listens.
    #[error("the AWS emulator did not start: {reason}")]
    MotoStart { reason: String },
    /// Local I/O (sockets, pipes, processes) failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// An AWS SDK call failed; `detail` is the SDK's full error context (code, message, cause).
    #[error("{operation} failed: {detail}")]
    Aws {
        operation: &'static str,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Data read back from the emulator is not what the output contract says.
    #[error("{0}")]
    Contract(String),
    /// testkit was used in a way it cannot work (e.g. the Lambda emulator outside a tokio runtime).
    #[error("testkit misuse: {0}")]
    Harness(&'static str),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

/// `error: cause: cause`, for messages that must carry the whole chain (panics, logs): the
/// collector's own, so the tests and the code join a chain the same way.
pub use anthropic_compliance_collector::error::error_chain;

/// The Cargo workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where the cargo binary `name` was built.
///
/// In order: `$TESTKIT_TARGET_DIR/<name>` (a profile directory such as `target/release`); the
/// runtime `CARGO_BIN_EXE_<name>` variable; the profile directory of the running test executable
/// (`target/<profile>/deps/..` or `target/<profile>/examples/..`) when the binary is there; else
/// `<workspace root>/target/debug/<name>`. Integration tests of the package that owns the binary
/// can simply pass `env!("CARGO_BIN_EXE_<name>")` instead.
pub fn binary_path(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("TESTKIT_TARGET_DIR") {
        return PathBuf::from(dir).join(name);
    }
    if let Some(exe) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(exe);
    }
    if let Some(profile_dir) = running_profile_dir() {
        let candidate = profile_dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    workspace_root().join("target").join("debug").join(name)
}

/// `target/<profile>` of the running test or example executable, if it lives in one.
fn running_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let parent = exe.parent()?;
    match parent.file_name()?.to_str()? {
        "deps" | "examples" => parent.parent().map(Path::to_path_buf),
        _ => Some(parent.to_path_buf()),
    }
}

/// A resource name unique per process and call, safe for S3 buckets, DynamoDB tables, secrets and
/// CloudWatch namespaces: lowercase ASCII letters, digits and `-`, at most 63 characters.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let suffix = format!(
        "{}-{}-{count}",
        base36(u128::from(std::process::id())),
        base36(nanos % 36u128.pow(8))
    );
    let mut stem: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let stem_budget = 63 - suffix.len() - 1;
    stem.truncate(stem_budget);
    let stem = stem.trim_matches('-');
    // S3 bucket names must start with a letter or digit.
    if stem.is_empty() { format!("t-{suffix}") } else { format!("{stem}-{suffix}") }
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".to_owned();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_distinct_and_s3_safe() {
        // GIVEN a prefix with characters S3 refuses
        // WHEN two names are made from it
        let a = unique_name("My_Bucket");
        let b = unique_name("My_Bucket");
        // THEN they differ, and each is a valid bucket name
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.len() >= 3 && name.len() <= 63, "{name}");
            assert!(name.starts_with("my-bucket-"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    #[test]
    fn unique_name_truncates_long_prefixes() {
        // GIVEN a prefix longer than a bucket name may be
        let long = "x".repeat(100);
        // WHEN a name is made from it
        let name = unique_name(&long);
        // THEN it still fits in 63 characters
        assert!(name.len() <= 63, "{name}");
    }

    #[test]
    fn workspace_root_holds_the_emulator_script() {
        // GIVEN this crate inside the workspace
        // WHEN the root is resolved
        // THEN it holds tools/aws_emulator.py
        assert!(workspace_root().join("tools/aws_emulator.py").is_file());
    }
}
