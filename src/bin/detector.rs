//! The detector binary, `anthropic-compliance-detector`: the composition root of the detector
//! function. Without arguments it serves Lambda invocations (the SQS batches of object-created
//! notifications, hunts); `evaluate …` runs the same engine over local files
//! ([`anthropic_compliance_collector::detector::cli`]).
//!
//! A bad configuration does not crash the cold start: every invocation then fails with
//! `ConfigurationInvalid` and the list of bad variables.

use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use anthropic_compliance_collector::archive::s3::S3Sink;
use anthropic_compliance_collector::aws;
use anthropic_compliance_collector::clock::SystemClock;
use anthropic_compliance_collector::detector::config::DetectorConfig;
use anthropic_compliance_collector::detector::dynamodb::DynamoLedger;
use anthropic_compliance_collector::detector::error::DetectorError;
use anthropic_compliance_collector::detector::rules_cache::RulesCache;
use anthropic_compliance_collector::detector::sns::SnsPublisher;
use anthropic_compliance_collector::detector::{Detector, cli};
use anthropic_compliance_collector::error::error_chain;
use anthropic_compliance_collector::memory;
use anthropic_compliance_collector::telemetry::cloudwatch::CloudWatchMetrics;

const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

type AwsDetector = Detector<S3Sink, DynamoLedger, SnsPublisher, CloudWatchMetrics, SystemClock>;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => match lambda() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        },
        Some("evaluate") => {
            let code = cli::evaluate(
                &args[1..],
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Some("-h" | "--help" | "help") => {
            println!("{}", cli::USAGE);
            std::process::ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown command {other:?}\n{}", cli::USAGE);
            std::process::ExitCode::from(2)
        }
    }
}

fn lambda() -> Result<(), lambda_runtime::Error> {
    let large_buffers_released = memory::release_large_buffers();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(large_buffers_released))
}

async fn serve(large_buffers_released: bool) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    tracing::debug!(large_buffers_released, "allocator set up");
    let detector = match DetectorConfig::from_env() {
        Ok(config) => Ok(build(config).await),
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration; every invocation will fail until it is fixed");
            Err(e)
        }
    };
    let detector = &detector;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline =
            Timestamp::from_millisecond(i64::try_from(event.context.deadline).unwrap_or(i64::MAX))
                .unwrap_or(Timestamp::MAX);
        let result = match detector {
            Ok(detector) => detector.handle(&event.payload, deadline).await,
            Err(e) => Err(DetectorError::Config(e.clone())),
        };
        result.map_err(|e| {
            tracing::error!(error_type = e.error_type(), error = %error_chain(&e), "invocation failed");
            Diagnostic { error_type: e.error_type().to_owned(), error_message: error_chain(&e) }
        })
    }))
    .await
}

async fn build(config: DetectorConfig) -> AwsDetector {
    let sdk = aws::sdk_config(AWS_ATTEMPT_TIMEOUT, AWS_OPERATION_TIMEOUT).await;
    let s3 = aws::s3_config(&sdk).build();
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .unwrap_or_else(|_| "anthropic-compliance-detector".into());
    Detector {
        archive: S3Sink::new(
            aws_sdk_s3::Client::from_conf(s3),
            &config.output_bucket,
            &config.output_prefix,
        ),
        ledger: DynamoLedger::new(aws_sdk_dynamodb::Client::new(&sdk), &config.state_table),
        publisher: SnsPublisher::new(aws_sdk_sns::Client::new(&sdk), &config.alert_topic_arn),
        metrics: CloudWatchMetrics::new(
            aws_sdk_cloudwatch::Client::new(&sdk),
            &config.metric_namespace,
            function_name,
        ),
        clock: SystemClock,
        rules: RulesCache::default(),
        config,
    }
}
