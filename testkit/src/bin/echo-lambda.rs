//! A tiny Lambda function on `lambda_runtime`, for the tests of testkit's Runtime API emulator.
//!
//! It answers `{"payload": <event>, "pid", "invocation" (count in this process), "request_id",
//! "deadline_ms", "function_name"}`, so a test can tell a warm process from a cold one. On the way:
//! `{"sleep_ms": N}` sleeps first (to hit a timeout), `{"fail": true}` fails with error type
//! `EchoFailure`, `{"exit": CODE}` exits the process mid-invocation (a crash).
//!
//! An SQS event (`{"Records": [...]}` of `aws:sqs` records) is answered as a function with
//! ReportBatchItemFailures does: `{"batchItemFailures": [{"itemIdentifier": <messageId>}]}` for
//! each record whose body is `fail`, and `"bodies"`, the bodies it saw.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
enum EchoError {
    #[error("failing as asked by the payload")]
    Requested,
}

impl From<EchoError> for Diagnostic {
    fn from(error: EchoError) -> Diagnostic {
        Diagnostic { error_type: "EchoFailure".to_owned(), error_message: error.to_string() }
    }
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, EchoError> {
    let (payload, context) = event.into_parts();
    let invocation = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    println!("echo-lambda: invocation {invocation} request {}", context.request_id);
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        eprintln!("echo-lambda: exiting with {code}");
        std::process::exit(i32::try_from(code).unwrap_or(1));
    }
    if payload.get("fail") == Some(&Value::Bool(true)) {
        eprintln!("echo-lambda: failing");
        return Err(EchoError::Requested);
    }
    if let Some(records) = sqs_records(&payload) {
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"] == "fail")
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        let bodies: Vec<&Value> = records.iter().map(|r| &r["body"]).collect();
        return Ok(json!({"batchItemFailures": failures, "bodies": bodies}));
    }
    Ok(json!({
        "payload": payload,
        "pid": std::process::id(),
        "invocation": invocation,
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "function_name": context.env_config.function_name,
    }))
}

/// The records of an SQS event, if `payload` is one.
fn sqs_records(payload: &Value) -> Option<&Vec<Value>> {
    let records = payload.get("Records")?.as_array()?;
    records.iter().all(|r| r["eventSource"] == "aws:sqs").then_some(records)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    println!("echo-lambda: cold start, pid {}", std::process::id());
    lambda_runtime::run(service_fn(handle)).await
}
