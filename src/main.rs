//! The Lambda binary: the composition root. Builds the configuration, one AWS `SdkConfig` and
//! every client once per cold start, then serves invocations through the Lambda Runtime API.
//!
//! A bad configuration does not crash the cold start: every invocation then fails with
//! `ConfigurationInvalid` and the list of bad variables, which is what the operator sees first.

// The invocation's future nests the handler's, the run's and the SDK's: its layout is deep.
#![recursion_limit = "256"]

use aws_config::timeout::TimeoutConfig;
use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use anthropic_compliance_collector::archive::s3::S3Sink;
use anthropic_compliance_collector::aws;
use anthropic_compliance_collector::clock::SystemClock;
use anthropic_compliance_collector::config::Config;
use anthropic_compliance_collector::error::RunError;
use anthropic_compliance_collector::feed::budget::BodyBudget;
use anthropic_compliance_collector::feed::http::HttpClient;
use anthropic_compliance_collector::feed::retry::Backoff;
use anthropic_compliance_collector::handler::{Collector, Identity};
use anthropic_compliance_collector::memory;
use anthropic_compliance_collector::secrets::KeyCache;
use anthropic_compliance_collector::secrets::secretsmanager::SecretsManagerSource;
use anthropic_compliance_collector::state::dynamodb::DynamoStore;
use anthropic_compliance_collector::sync::run::PUT_TIMEOUT;
use anthropic_compliance_collector::telemetry::cloudwatch::CloudWatchMetrics;

const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type AwsCollector = Collector<
    HttpClient<SystemClock>,
    SecretsManagerSource,
    S3Sink,
    DynamoStore,
    CloudWatchMetrics,
    SystemClock,
>;

fn main() -> Result<(), lambda_runtime::Error> {
    // Before any thread or large buffer exists.
    let large_buffers_released = memory::release_large_buffers();
    // One thread: below 1,769 MB a Lambda has less than one vCPU, the work is I/O-bound but for
    // gzip, and one allocator arena keeps the peak memory that of one page.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(large_buffers_released))
}

async fn serve(large_buffers_released: bool) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    tracing::debug!(large_buffers_released, "allocator set up");
    let collector = match Config::from_env() {
        Ok(config) => Ok(build(config).await?),
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration; every invocation will fail until it is fixed");
            Err(e)
        }
    };
    let collector = &collector;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline =
            Timestamp::from_millisecond(i64::try_from(event.context.deadline).unwrap_or(i64::MAX))
                .unwrap_or(Timestamp::MAX);
        let result = match collector {
            Ok(collector) => {
                collector.handle(&event.payload, deadline, &event.context.request_id).await
            }
            Err(e) => Err(RunError::from(e.clone())),
        };
        result.map_err(|e| {
            // The runtime does not log a handler's error: say it once, with its type.
            tracing::error!(error_type = e.error_type(), error = %e.chain(), "invocation failed");
            Diagnostic::from(e)
        })
    }))
    .await
}

async fn build(config: Config) -> Result<AwsCollector, lambda_runtime::Error> {
    // No AWS call may hang: each is bounded (the handler also bounds the whole invocation).
    let sdk = aws::sdk_config(AWS_ATTEMPT_TIMEOUT, AWS_OPERATION_TIMEOUT).await;
    let s3 = aws::s3_config(&sdk)
        // No object write may outlive the batch's write lease (see sync::run::WRITE_LEASE).
        .timeout_config(TimeoutConfig::builder().operation_timeout(PUT_TIMEOUT).build())
        .build();
    let identity = Identity {
        function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|_| "anthropic-compliance-collector".into()),
        function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
            .unwrap_or_else(|_| "$LATEST".into()),
    };
    Ok(Collector {
        secrets: SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            &config.api_key_secret_id,
        ),
        keys: KeyCache::default(),
        feed: HttpClient::new(
            &config.api_base_url,
            config.max_requests_per_minute,
            SystemClock,
            Backoff::DOCUMENTED,
        )?
        .with_body_budget(BodyBudget::from_env()),
        sink: S3Sink::new(
            aws_sdk_s3::Client::from_conf(s3),
            &config.output_bucket,
            &config.output_prefix,
        ),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.state_table),
        metrics: CloudWatchMetrics::new(
            aws_sdk_cloudwatch::Client::new(&sdk),
            &config.metric_namespace,
            identity.function_name.clone(),
        ),
        identity,
        clock: SystemClock,
        config,
    })
}
