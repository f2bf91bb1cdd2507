//! The AWS SDK set-up both composition roots (the collector's `main.rs`, the detector's
//! `bin/detector.rs`) share: every call bounded, and path-style S3 on a local emulator.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK configuration from the environment, no call longer than `attempt` a try and
/// `operation` in all.
pub async fn sdk_config(attempt: Duration, operation: Duration) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        )
        .load()
        .await
}

/// S3's configuration: local emulators (tests, the demo) serve S3 on one host, so an explicit
/// endpoint means path-style addressing.
pub fn s3_config(sdk: &SdkConfig) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some())
}
