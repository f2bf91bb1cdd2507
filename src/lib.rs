//! anthropic-compliance-collector: copies every activity of the Anthropic Compliance API Activity
//! Feed into your own S3 bucket as gzipped NDJSON, exactly once.
//!
//! A functional core ([`sync`], [`archive::encode`], [`config`]) between thin adapters: the feed
//! over HTTPS ([`feed::http`]), objects in S3 ([`archive::s3`]), state in DynamoDB
//! ([`state::dynamodb`]), the key in Secrets Manager ([`secrets::secretsmanager`]) and metrics in
//! CloudWatch ([`telemetry::cloudwatch`]). `main.rs` composes them once per cold start.

pub mod archive;
pub mod aws;
pub mod clock;
pub mod config;
pub mod detect;
pub mod detector;
pub mod error;
pub mod feed;
pub mod handler;
pub mod invocation;
pub mod memory;
pub mod secrets;
pub mod state;
pub mod sync;
pub mod telemetry;
