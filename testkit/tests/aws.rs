//! The AWS emulator through the Rust SDK. All tests share one moto (`Moto::shared`) and isolate
//! themselves with unique resource names.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::operation::set_alarm_state::SetAlarmStateError;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, StateValue,
    Statistic,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use testkit::aws::{self, Clients};
use testkit::moto::Moto;
use testkit::unique_name;

fn clients() -> Clients {
    Clients::for_moto(Moto::shared())
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn s3_put_then_get_with_path_style_returns_the_bytes() {
    // GIVEN a bucket in the shared emulator
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    // WHEN an object is put through the path-style client
    c.s3.put_object()
        .bucket(&bucket)
        .key("a/b.txt")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    // THEN it reads back, and is listed with its size
    let bytes = aws::get_object_bytes(&c.s3, &bucket, "a/b.txt").await.unwrap();
    assert_eq!(bytes, b"hello");
    let listed = aws::list_objects(&c.s3, &bucket, "a/").await.unwrap();
    assert_eq!(listed, vec![aws::ObjectInfo { key: "a/b.txt".to_owned(), size: 5 }]);
}

#[tokio::test]
async fn s3_put_if_none_match_on_an_existing_key_fails_with_412() {
    // GIVEN an existing object
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    let put = |body: &'static [u8]| {
        c.s3.put_object()
            .bucket(&bucket)
            .key("k")
            .if_none_match("*")
            .body(ByteStream::from_static(body))
            .send()
    };
    put(b"first").await.unwrap();
    // WHEN the same key is put again with If-None-Match: *
    let error = put(b"second").await.unwrap_err();
    // THEN S3 refuses with 412 PreconditionFailed, and the first object stays
    assert_eq!(error.code(), Some("PreconditionFailed"), "{error:?}");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(412));
    let bytes = aws::get_object_bytes(&c.s3, &bucket, "k").await.unwrap();
    assert_eq!(bytes, b"first");
}

#[tokio::test]
async fn list_objects_lists_only_the_prefix_in_key_order() {
    // GIVEN objects under two prefixes
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    for key in ["p/2", "p/1", "q/1", "p/3"] {
        c.s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    // WHEN one prefix is listed
    let keys: Vec<String> =
        aws::list_objects(&c.s3, &bucket, "p/").await.unwrap().into_iter().map(|o| o.key).collect();
    // THEN exactly its objects come back, sorted
    assert_eq!(keys, ["p/1", "p/2", "p/3"]);
}

#[tokio::test]
async fn read_gzip_lines_returns_the_ndjson_lines() {
    // GIVEN a gzipped NDJSON object with a trailing newline
    let c = clients();
    let bucket = unique_name("bucket");
    aws::create_bucket(&c.s3, &bucket).await.unwrap();
    c.s3.put_object()
        .bucket(&bucket)
        .key("x.json.gz")
        .body(ByteStream::from(gzip("{\"id\":1}\n{\"id\":2}\n")))
        .send()
        .await
        .unwrap();
    // WHEN it is read back
    let lines = aws::read_gzip_lines(&c.s3, &bucket, "x.json.gz").await.unwrap();
    // THEN each line is one record
    assert_eq!(lines, ["{\"id\":1}", "{\"id\":2}"]);
}

#[test]
fn gunzip_lines_rejects_a_missing_trailing_newline_and_crlf() {
    // GIVEN NDJSON that breaks the output contract
    // WHEN it is decoded
    // THEN the contract violation is reported
    let no_newline = aws::gunzip_lines(&gzip("{\"id\":1}")).unwrap_err();
    assert!(no_newline.contains("trailing newline"), "{no_newline}");
    let crlf = aws::gunzip_lines(&gzip("{\"id\":1}\r\n")).unwrap_err();
    assert!(crlf.contains("CR LF"), "{crlf}");
    assert_eq!(aws::gunzip_lines(&gzip("")).unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn dynamodb_conditional_put_on_an_existing_item_fails_with_conditional_check_failed() {
    // GIVEN a state table holding an item at version 1
    let c = clients();
    let table = unique_name("state");
    aws::create_state_table(&c.dynamodb, &table).await.unwrap();
    let put_if_absent = |version: &str| {
        c.dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("state".to_owned()))
            .item("version", AttributeValue::N(version.to_owned()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
    };
    put_if_absent("1").await.unwrap();
    // WHEN a second put is conditioned on the item not existing
    let error = put_if_absent("2").await.unwrap_err();
    // THEN it fails with ConditionalCheckFailed and the item keeps version 1
    assert!(
        matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))),
        "{error:?}"
    );
    let item = aws::get_item(&c.dynamodb, &table, "state").await.unwrap().unwrap();
    assert_eq!(item.get("version"), Some(&AttributeValue::N("1".to_owned())));
    assert_eq!(aws::get_item(&c.dynamodb, &table, "other").await.unwrap(), None);
}

#[tokio::test]
async fn secrets_round_trip_by_name_and_arn() {
    // GIVEN a secret
    let c = clients();
    let name = unique_name("api-key");
    let arn = aws::put_secret(&c.secretsmanager, &name, "{\"api_key\":\"sk-test\"}").await.unwrap();
    // WHEN it is read by name and by ARN
    for id in [&name, &arn] {
        let value = c.secretsmanager.get_secret_value().secret_id(id).send().await.unwrap();
        // THEN the SecretString is what was stored
        assert_eq!(value.secret_string(), Some("{\"api_key\":\"sk-test\"}"));
    }
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:"), "{arn}");
}

fn datum(name: &str, value: f64, function: &str) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .dimensions(Dimension::builder().name("Function").value(function).build())
        .timestamp(DateTime::from(SystemTime::now()))
        .build()
}

#[tokio::test]
async fn cloudwatch_put_metric_data_over_cbor_reads_back_through_both_apis() {
    // GIVEN metrics put through the Rust SDK (Smithy RPC v2 CBOR), two values and a zero
    let c = clients();
    let namespace = unique_name("Ns");
    let metric = unique_name("EventsProcessed");
    c.cloudwatch
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(datum(&metric, 3.0, "fn"))
        .metric_data(datum(&metric, 4.5, "fn"))
        .metric_data(datum("Zero", 0.0, "fn"))
        .send()
        .await
        .unwrap();
    let dims = [("Function", "fn")];
    // WHEN they are read back through GetMetricStatistics (the fixtures)
    let sum = aws::metric_sum(&c.cloudwatch, &namespace, &metric, &dims).await.unwrap();
    let zero = aws::metric_sum(&c.cloudwatch, &namespace, "Zero", &dims).await.unwrap();
    let absent = aws::metric_sum(&c.cloudwatch, &namespace, "Absent", &dims).await.unwrap();
    let points = aws::metric_datapoints(&c.cloudwatch, &namespace, &metric, &dims).await.unwrap();
    // THEN the values are there, a zero is a datapoint, and a metric never put has none
    assert_eq!(sum, Some(7.5));
    assert_eq!(zero, Some(0.0));
    assert_eq!(absent, None);
    assert_eq!(points.iter().sum::<f64>(), 7.5);

    // AND GetMetricData (timestamps and lists over CBOR) sees the same sum
    let now = SystemTime::now();
    let query = MetricDataQuery::builder()
        .id("q")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(&namespace)
                        .metric_name(&metric)
                        .dimensions(Dimension::builder().name("Function").value("fn").build())
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .build();
    let data = c
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(DateTime::from(now - Duration::from_secs(3600)))
        .end_time(DateTime::from(now + Duration::from_secs(60)))
        .send()
        .await
        .unwrap();
    let result = &data.metric_data_results()[0];
    assert_eq!(result.id(), Some("q"));
    assert_eq!(result.values().iter().sum::<f64>(), 7.5);
    assert_eq!(result.timestamps().len(), result.values().len());
}

#[tokio::test]
async fn cloudwatch_large_put_metric_data_is_gzip_compressed_and_accepted() {
    // GIVEN a PutMetricData body above the SDK's 10 KiB compression threshold
    let c = clients();
    let namespace = unique_name("Ns");
    let function = "f".repeat(200);
    let mut request = c.cloudwatch.put_metric_data().namespace(&namespace);
    for _ in 0..100 {
        request = request.metric_data(datum("Big", 1.0, &function));
    }
    // WHEN it is sent
    request.send().await.unwrap();
    // THEN every datum arrived
    let sum = aws::metric_sum(&c.cloudwatch, &namespace, "Big", &[("Function", &function)])
        .await
        .unwrap();
    assert_eq!(sum, Some(100.0));
}

#[tokio::test]
async fn cloudwatch_errors_surface_their_modeled_code_in_the_rust_sdk() {
    let c = clients();
    // GIVEN no alarm of that name
    let alarm = unique_name("alarm");
    // WHEN its state is set
    let error = c
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(StateValue::Ok)
        .state_reason("test")
        .send()
        .await
        .unwrap_err();
    // THEN the SDK reports the modeled ResourceNotFound with its HTTP status
    assert!(
        matches!(error.as_service_error(), Some(SetAlarmStateError::ResourceNotFound(_))),
        "{error:?}"
    );
    assert_eq!(error.code(), Some("ResourceNotFound"));
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(404));

    // GIVEN a datum with both Value and Values
    let bad = MetricDatum::builder().metric_name("m").value(1.0).values(2.0).build();
    // WHEN it is put
    let error = c
        .cloudwatch
        .put_metric_data()
        .namespace(unique_name("Ns"))
        .metric_data(bad)
        .send()
        .await
        .unwrap_err();
    // THEN the SDK reports InvalidParameterValue with moto's message
    let service_error = error.as_service_error();
    assert!(
        matches!(service_error, Some(PutMetricDataError::InvalidParameterValueException(_))),
        "{error:?}"
    );
    assert!(
        service_error.and_then(|e| e.message()).is_some_and(|m| m.contains("mutually exclusive")),
        "{error:?}"
    );
}

#[tokio::test]
async fn cloudwatch_alarms_round_trip_over_cbor() {
    // GIVEN an alarm on a metric
    let c = clients();
    let alarm = unique_name("no-events");
    c.cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("AnthropicCompliance")
        .metric_name("EventsProcessed")
        .statistic(Statistic::Sum)
        .period(3600)
        .evaluation_periods(24)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .treat_missing_data("breaching")
        .send()
        .await
        .unwrap();
    // WHEN alarms are described by name
    let described = c.cloudwatch.describe_alarms().alarm_names(&alarm).send().await.unwrap();
    // THEN the alarm comes back with its settings and timestamps
    let found = &described.metric_alarms()[0];
    assert_eq!(found.alarm_name(), Some(alarm.as_str()));
    assert_eq!(found.threshold(), Some(1.0));
    assert_eq!(found.evaluation_periods(), Some(24));
    assert_eq!(found.treat_missing_data(), Some("breaching"));
    assert!(found.state_updated_timestamp().is_some());
    // AND ListMetrics works on the same front
    c.cloudwatch.list_metrics().namespace(unique_name("Ns")).send().await.unwrap();
}

#[test]
fn a_missing_virtualenv_says_how_to_create_it() {
    // GIVEN the error testkit gives when .venv/bin/python is missing
    let error = testkit::Error::VenvMissing { python: "/x/.venv/bin/python".into() };
    // WHEN it is shown
    // THEN it names the fix
    assert!(error.to_string().contains(
        "run `make test` or `make venv` first: it creates .venv with moto (tools/requirements.txt)"
    ));
}
