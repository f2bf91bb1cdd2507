//! AWS SDK clients pointed at the local emulator, and the fixtures tests arrange and inspect with.
//!
//! The config is built by hand, not loaded from the environment: a developer's `AWS_PROFILE`,
//! region or real credentials can never leak into a test, and no test can reach real AWS. S3 uses
//! path-style addressing (moto on 127.0.0.1 has no virtual-host buckets). CloudWatch calls go out as
//! Smithy RPC v2 CBOR and reach moto through the emulator's CBOR front.
//!
//! Fixtures set things up (`create_bucket`, `create_state_table`, `put_secret`) or read them back
//! (`list_objects`, `read_gzip_lines`, `get_item`, `metric_sum`); they take the client first so a
//! test can use the same clients as the code under test.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

use crate::Error;
use crate::moto::Moto;

/// Region of every test resource.
pub const REGION: &str = "us-east-1";
/// Static credentials moto accepts (it checks no signature).
pub const ACCESS_KEY_ID: &str = "testing";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "testing";

/// An SDK config for the emulator at `endpoint`: region us-east-1, static test credentials, every
/// service's endpoint overridden.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "testkit");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

/// The environment a function under test needs to reach the emulator the way the collector's
/// `main` does (`AWS_ENDPOINT_URL` plus region and credentials).
pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// S3 client with path-style addressing.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// DynamoDB client.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// Secrets Manager client.
pub fn secretsmanager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// CloudWatch client (Smithy RPC v2 CBOR on the wire).
pub fn cloudwatch(config: &SdkConfig) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(config)
}

/// SNS client.
pub fn sns(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// SQS client.
pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// The clients of one emulator, for tests that want them all.
#[derive(Debug, Clone)]
pub struct Clients {
    pub config: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    /// Clients for the emulator at `endpoint`.
    pub fn new(endpoint: &str) -> Clients {
        let config = sdk_config(endpoint);
        Clients {
            s3: s3(&config),
            dynamodb: dynamodb(&config),
            secretsmanager: secretsmanager(&config),
            cloudwatch: cloudwatch(&config),
            sns: sns(&config),
            sqs: sqs(&config),
            config,
        }
    }

    /// Clients for `moto`.
    pub fn for_moto(moto: &Moto) -> Clients {
        Clients::new(moto.endpoint())
    }
}

/// Wraps an SDK error with the operation's name and the SDK's full error context.
pub fn sdk_error<E>(operation: &'static str, error: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    Error::Aws {
        operation,
        detail: aws_sdk_s3::error::DisplayErrorContext(&error).to_string(),
        source: Box::new(error),
    }
}

/// The service error code of an SDK error (`"PreconditionFailed"`, `"ResourceNotFound"`, ...).
pub fn error_code<E: ProvideErrorMetadata>(error: &E) -> Option<&str> {
    error.code()
}

// ---- S3 ----

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: i64,
}

/// Creates bucket `name` (us-east-1: no location constraint).
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) -> Result<(), Error> {
    s3.create_bucket().bucket(name).send().await.map_err(|e| sdk_error("CreateBucket", e))?;
    Ok(())
}

/// Every object under `prefix`, in key order, across all pages.
pub async fn list_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, Error> {
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut objects = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("ListObjectsV2", e))?;
        for object in page.contents() {
            objects.push(ObjectInfo {
                key: object.key().unwrap_or_default().to_owned(),
                size: object.size().unwrap_or_default(),
            });
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// The bytes of an object.
pub async fn get_object_bytes(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, Error> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error("GetObject", e))?;
    let body = object.body.collect().await.map_err(|e| sdk_error("GetObject body", e))?;
    Ok(body.into_bytes().to_vec())
}

/// The lines of a gzipped NDJSON object, checked against the output contract: valid gzip, UTF-8,
/// LF line ends (no CR), a trailing newline. An empty object yields no lines.
pub async fn read_gzip_lines(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<String>, Error> {
    let bytes = get_object_bytes(s3, bucket, key).await?;
    gunzip_lines(&bytes).map_err(|reason| Error::Contract(format!("s3://{bucket}/{key}: {reason}")))
}

/// [`read_gzip_lines`] without the I/O.
pub fn gunzip_lines(gzipped: &[u8]) -> Result<Vec<String>, String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(gzipped)
        .read_to_string(&mut text)
        .map_err(|e| format!("not gzip-compressed UTF-8: {e}"))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err("no trailing newline".to_owned());
    };
    let lines: Vec<String> = body.split('\n').map(str::to_owned).collect();
    if let Some(n) = lines.iter().position(|l| l.ends_with('\r')) {
        return Err(format!("line {} ends with CR LF, not LF", n + 1));
    }
    Ok(lines)
}

// ---- DynamoDB ----

/// Creates the collector's state table: partition key `pk` (String), no sort key, on-demand.
pub async fn create_state_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), Error> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| sdk_error("CreateTable (attribute)", e))?;
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| sdk_error("CreateTable (key schema)", e))?;
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(attribute)
        .key_schema(key)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| sdk_error("CreateTable", e))?;
    Ok(())
}

/// The item with partition key `pk`, read consistently; `None` if there is none.
pub async fn get_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
    let output = ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    Ok(output.item)
}

// ---- Secrets Manager ----

/// Creates secret `name` with SecretString `value`; returns its ARN.
pub async fn put_secret(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<String, Error> {
    let output = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| sdk_error("CreateSecret", e))?;
    output.arn.ok_or_else(|| Error::Contract(format!("CreateSecret {name} returned no ARN")))
}

// ---- CloudWatch ----

/// How far back the metric fixtures look.
pub const METRIC_LOOKBACK: Duration = Duration::from_secs(3600);

/// The sum of every datapoint of a metric over the last hour, `None` if it has none.
///
/// Uses GetMetricStatistics, which in moto filters on the namespace (its GetMetricData ignores the
/// namespace when dimensions are given). Dimensions match as in moto: the datapoint must carry at
/// least the given ones.
pub async fn metric_sum(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric_name: &str,
    dimensions: &[(&str, &str)],
) -> Result<Option<f64>, Error> {
    let points = metric_statistics(cw, namespace, metric_name, dimensions, 3600).await?;
    Ok((!points.is_empty()).then(|| points.iter().sum()))
}

/// The datapoints of a metric over the last hour, oldest first, one per second that has data
/// (values put within the same second are summed, as CloudWatch aggregates them).
pub async fn metric_datapoints(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric_name: &str,
    dimensions: &[(&str, &str)],
) -> Result<Vec<f64>, Error> {
    metric_statistics(cw, namespace, metric_name, dimensions, 1).await
}

async fn metric_statistics(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric_name: &str,
    dimensions: &[(&str, &str)],
    period_seconds: i32,
) -> Result<Vec<f64>, Error> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};

    let now = SystemTime::now();
    // moto drops sub-second precision and compares `timestamp < end`: end a minute ahead.
    let start = now.checked_sub(METRIC_LOOKBACK).unwrap_or(now);
    let end = now + Duration::from_secs(60);
    let mut request = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric_name)
        .start_time(DateTime::from(start))
        .end_time(DateTime::from(end))
        .period(period_seconds)
        .statistics(Statistic::Sum);
    for (name, value) in dimensions {
        request = request.dimensions(Dimension::builder().name(*name).value(*value).build());
    }
    let output = request.send().await.map_err(|e| sdk_error("GetMetricStatistics", e))?;
    let mut points: Vec<_> = output
        .datapoints()
        .iter()
        .filter_map(|p| Some((p.timestamp()?.as_nanos(), p.sum()?)))
        .collect();
    points.sort_by_key(|(at, _)| *at);
    Ok(points.into_iter().map(|(_, sum)| sum).collect())
}
