//! The integration tests, one binary (`autotests = false`) so moto starts once for all of them.
//!
//! Contents:
//! - `feed_http`: the HTTPS feed client against the compliance simulator on 127.0.0.1
//!   (headers, literal brackets, paging, retry policy by error class, deadlines);
//! - `aws_adapters`: the S3, DynamoDB, Secrets Manager and CloudWatch adapters against moto;
//! - `end_to_end`: the built Lambda binary driven through the Lambda Runtime API protocol,
//!   against the simulator and moto, over several runs: exactly-once delivery, state, metrics,
//!   failures that change nothing, and the key never in a log line;
//! - `operations`: verify, dry runs, backfills and redeliveries, run manifests, health metrics,
//!   the canary and tamper signals, the rate budget;
//! - `query_engine`: DuckDB reads the archive as written (Hive partitions, every field);
//! - `detections`: every shipped Sigma rule against its own test cases, through the detector's engine;
//! - `detector_e2e`: the collector, moto S3 -> SNS -> SQS, the built detector through the Runtime API,
//!   the alert topic: alerts once, with their attributes, correlations across objects, redelivery;
//! - `cross_engine`: the detector and pySigma's DuckDB SQL over one archive written by the collector
//!   find the same activities for every rule;
//! - `contract`: the README's configuration table, template.yaml and the code agree;
//! - `faults`: one test per fault class (API faults from the simulator, AWS faults from the fault
//!   proxy in front of moto, killed processes, deadlines, concurrent runs, bad input): outcome
//!   rules, no loss, no duplicate, a valid state item;
//! - `chaos`: seeded random fault schedules (`CHAOS_SEED`, `CHAOS_RUNS`; `make chaos`), each
//!   checked for loss and duplicates at the object level;
//! - `support`: the deployment (`Stack`) and the loss/duplicate audit every test of the built
//!   function shares.

mod aws_adapters;
mod chaos;
mod contract;
mod cross_engine;
mod detections;
mod detector_e2e;
mod end_to_end;
mod faults;
mod feed_http;
mod operations;
mod query_engine;
mod support;
