//! testkit's own tests: the emulator and the Lambda driver against real SDK clients and a real
//! `lambda_runtime` function.
//!
//! Table of contents:
//! - `aws`: moto through the Rust SDK: S3 (path style, conditional writes), DynamoDB (conditional
//!   puts), Secrets Manager, CloudWatch over Smithy RPC v2 CBOR (the emulator's CBOR front), and
//!   the read-back fixtures.
//! - `fault_proxy`: the fault-injecting proxy in front of moto: forwarding, each service's error
//!   shape as the SDK reads it, the SDK's retries, delays, dropped answers, the random mode.
//! - `pubsub`: moto's S3 notification → SNS → SQS delivery (raw and enveloped, filter policies),
//!   and the SQS event source player: partial batch failures, visibility timeouts, redrive.
//! - `lambda`: the Runtime API emulator driving `echo-lambda`: response, error, timeout, crash,
//!   warm reuse, cold start after a kill, logs.
//!
//! Needs `<workspace>/.venv` (`make venv`).

mod aws;
mod fault_proxy;
mod lambda;
mod pubsub;
