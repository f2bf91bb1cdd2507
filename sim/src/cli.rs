//! Command-line arguments of the `compliance-sim` binary, parsed into a validated [`Command`].
//!
//! Pure (arguments in, command out) so it is tested without a process. Every problem is
//! collected and reported together. Both `--flag value` and `--flag=value` are accepted.

use std::net::SocketAddr;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::{ApiKey, LargeRecords, SimConfig};
use crate::generate::GenerateSpec;

pub const USAGE: &str = "\
compliance-sim: a strict local simulator of the Anthropic Compliance API Activity Feed

USAGE:
    compliance-sim [OPTIONS]

OPTIONS:
    --listen ADDR          address to listen on [default: 127.0.0.1:0]
    --seed N               seed of generated data, ids and cursors [default: 1]
    --api-key KEY          accept KEY with the read:compliance_activities scope (repeatable;
                           default: sk-ant-api01-simulator-test-key when none is given)
    --no-scope-key KEY     accept KEY without the scope: the feed answers 403 (repeatable)
    --rate-limit N         requests per sliding minute [default: 600]
    --max-page-size N      largest accepted limit [default: 5000]
    --latency-ms N         added to every API response [default: 0]
    --chunked              send every page chunked, without a content-length
    --large-records E:B    make one generated activity in E (the first, then every E-th)
                           at least B bytes, with a padding field `_sim_padding`
    --generate N           generate N activities at start (needs --from and --to)
    --from RFC3339         start of the generated range (inclusive)
    --to RFC3339           end of the generated range (exclusive)
    -h, --help             print this help

Prints one line `listening on http://HOST:PORT` on stdout once ready, then logs on stderr
(RUST_LOG sets the level). Control endpoints: POST /_sim/generate, POST /_sim/reveal,
GET /_sim/activities, POST /_sim/insert, GET /_sim/requests, POST /_sim/faults,
POST /_sim/faults/random, POST /_sim/faults/clear, POST /_sim/revoke.
";

/// What the binary should do.
#[derive(Debug)]
pub enum Command {
    Help,
    Run(Box<RunOptions>),
}

/// A validated run configuration.
#[derive(Debug)]
pub struct RunOptions {
    pub listen: SocketAddr,
    pub config: SimConfig,
    /// Activities to generate before serving.
    pub generate: Option<GenerateSpec>,
}

/// Every problem found in the arguments.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct CliError(pub Vec<String>);

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let mut errors = Vec::new();
    let mut listen = None;
    let mut config = SimConfig::default();
    let mut scoped = Vec::new();
    let mut unscoped = Vec::new();
    let mut generate = None;
    let mut from = None;
    let mut to = None;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "--chunked" {
            match inline.as_deref() {
                None | Some("true") => config.chunked = true,
                Some("false") => config.chunked = false,
                Some(other) => errors.push(format!("--chunked: invalid value {other:?}")),
            }
            continue;
        }
        let known = [
            "--listen",
            "--seed",
            "--api-key",
            "--no-scope-key",
            "--rate-limit",
            "--max-page-size",
            "--latency-ms",
            "--large-records",
            "--generate",
            "--from",
            "--to",
        ];
        if !known.contains(&flag.as_str()) {
            errors.push(format!("unknown argument: {arg}"));
            continue;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            errors.push(format!("{flag} needs a value"));
            continue;
        };
        match flag.as_str() {
            "--listen" => listen = parse_value(&flag, &value, &mut errors),
            "--seed" => {
                if let Some(seed) = parse_value(&flag, &value, &mut errors) {
                    config.seed = seed;
                }
            }
            "--api-key" => scoped.push(value),
            "--no-scope-key" => unscoped.push(value),
            "--rate-limit" => {
                if let Some(n) = parse_value(&flag, &value, &mut errors) {
                    config.rate_limit_per_minute = n;
                }
            }
            "--max-page-size" => match parse_value::<u32>(&flag, &value, &mut errors) {
                Some(0) => errors.push("--max-page-size must be at least 1".to_owned()),
                Some(n) => config.max_page_size = n,
                None => {}
            },
            "--latency-ms" => {
                if let Some(ms) = parse_value(&flag, &value, &mut errors) {
                    config.latency = Duration::from_millis(ms);
                }
            }
            "--large-records" => match value.parse::<LargeRecords>() {
                Ok(large) => config.large_records = Some(large),
                Err(why) => errors.push(format!("--large-records: {why}: {value:?}")),
            },
            "--generate" => generate = parse_value::<usize>(&flag, &value, &mut errors),
            "--from" => from = parse_value::<Timestamp>(&flag, &value, &mut errors),
            "--to" => to = parse_value::<Timestamp>(&flag, &value, &mut errors),
            _ => {}
        }
    }

    if !scoped.is_empty() {
        config.keys = scoped.into_iter().map(ApiKey::with_scope).collect();
    }
    config.keys.extend(unscoped.into_iter().map(ApiKey::without_scope));

    let generate = match (generate, from, to) {
        (Some(count), Some(from), Some(to)) => {
            if from > to {
                errors.push("--from must not be after --to".to_owned());
            }
            Some(GenerateSpec { count, from, to, hidden: false })
        }
        (Some(_), _, _) => {
            errors.push("--generate needs --from and --to".to_owned());
            None
        }
        (None, None, None) => None,
        (None, _, _) => {
            errors.push("--from and --to go with --generate".to_owned());
            None
        }
    };

    if !errors.is_empty() {
        return Err(CliError(errors));
    }
    let listen = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    Ok(Command::Run(Box::new(RunOptions { listen, config, generate })))
}

fn parse_value<T: std::str::FromStr>(
    flag: &str,
    value: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{flag}: invalid value {value:?}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, CliError> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    fn run(args: &[&str]) -> RunOptions {
        match parse(args) {
            Ok(Command::Run(options)) => *options,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn chunked_bodies_and_large_records_are_options() {
        let options = run(&["--chunked", "--large-records", "5:40960"]);
        assert!(options.config.chunked);
        assert_eq!(options.config.large_records, Some(LargeRecords { every: 5, bytes: 40960 }));
        assert!(!run(&[]).config.chunked);
        assert!(run(&[]).config.large_records.is_none());
        for bad in ["5", "0:10", "5:0", "x:1"] {
            assert!(parse(&["--large-records", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["--chunked=maybe"]).is_err());
    }

    #[test]
    fn no_arguments_give_the_defaults() {
        let options = run(&[]);
        assert_eq!(options.listen.to_string(), "127.0.0.1:0");
        assert_eq!(options.config.seed, 1);
        assert_eq!(options.config.keys, [ApiKey::with_scope(crate::config::DEFAULT_API_KEY)]);
        assert!(options.generate.is_none());
    }

    #[test]
    fn every_flag_is_read() {
        let options = run(&[
            "--listen",
            "127.0.0.1:8080",
            "--seed=7",
            "--api-key",
            "k1",
            "--api-key",
            "k2",
            "--no-scope-key",
            "k3",
            "--rate-limit",
            "5",
            "--max-page-size",
            "10",
            "--latency-ms",
            "25",
            "--generate",
            "100",
            "--from",
            "2026-04-01T00:00:00Z",
            "--to",
            "2026-04-02T00:00:00Z",
        ]);
        assert_eq!(options.listen.port(), 8080);
        assert_eq!(options.config.seed, 7);
        assert_eq!(
            options.config.keys,
            [ApiKey::with_scope("k1"), ApiKey::with_scope("k2"), ApiKey::without_scope("k3")]
        );
        assert_eq!(options.config.rate_limit_per_minute, 5);
        assert_eq!(options.config.max_page_size, 10);
        assert_eq!(options.config.latency, Duration::from_millis(25));
        assert_eq!(options.generate.map(|g| g.count), Some(100));
    }

    #[test]
    fn a_no_scope_key_alone_keeps_the_default_key() {
        let options = run(&["--no-scope-key", "k3"]);
        assert_eq!(options.config.keys.len(), 2);
        assert!(options.config.keys[0].has_scope);
        assert!(!options.config.keys[1].has_scope);
    }

    #[test]
    fn help_wins() {
        assert!(matches!(parse(&["--seed", "x", "--help"]), Ok(Command::Help)));
    }

    #[test]
    fn all_problems_are_reported_together() {
        let Err(CliError(errors)) =
            parse(&["--seed", "x", "--bogus", "--generate", "5", "--rate-limit"])
        else {
            panic!("expected errors");
        };
        assert_eq!(
            errors,
            [
                "--seed: invalid value \"x\"",
                "unknown argument: --bogus",
                "--rate-limit needs a value",
                "--generate needs --from and --to",
            ]
        );
    }
}
