//! Prices and the arithmetic that turns measured figures into dollars. Pure, so it is tested.
//!
//! List prices, us-east-1, as the issue gives them or as AWS publishes them; each constant says
//! which. A month is 30 days: 8,640 runs on a 5-minute schedule.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// Lambda arm64 compute, per GB-second (the figure).
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda requests: $0.20 per million.
pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
/// Lambda gives a function one vCPU at 1,769 MB and CPU in proportion below that, so one
/// CPU-second of work costs 1,769 MB-seconds whatever the memory size (below one vCPU).
pub const LAMBDA_MB_PER_VCPU: f64 = 1769.0;
/// S3 Standard storage per GB-month (the figure).
pub const S3_GB_MONTH: f64 = 0.023;
/// S3 PUT (and LIST) requests: $0.005 per 1,000.
pub const S3_PUT: f64 = 0.005 / 1000.0;
/// S3 GET requests: $0.0004 per 1,000.
pub const S3_GET: f64 = 0.0004 / 1000.0;
/// DynamoDB on-demand writes: $1.25 per million WRU, the list price before AWS halved it to
/// $0.625 in November 2024 — the conservative one, as the brief asks.
pub const DYNAMODB_WRU: f64 = 1.25 / 1e6;
/// DynamoDB on-demand reads: $0.25 per million RRU (same vintage as [`DYNAMODB_WRU`]).
pub const DYNAMODB_RRU: f64 = 0.25 / 1e6;
/// CloudWatch PutMetricData: $0.01 per 1,000 requests.
pub const CW_PUT_METRIC_DATA: f64 = 0.01 / 1000.0;
/// CloudWatch custom metrics: $0.30 per metric (name and dimensions) per month, first 10,000,
/// prorated by the hour: a series costs $0.30/730 for each hour in which it is put at all.
pub const CW_CUSTOM_METRIC_MONTH: f64 = 0.30;
/// Hours in CloudWatch's billing month.
pub const CW_HOURS_MONTH: f64 = 730.0;
/// Runs in an hour on the 5-minute schedule.
pub const RUNS_PER_HOUR: f64 = 12.0;
/// CloudWatch Logs ingestion: $0.50 per GB.
pub const CW_LOGS_GB: f64 = 0.50;
/// Secrets Manager: $0.40 per secret per month.
pub const SECRET_MONTH: f64 = 0.40;
/// Secrets Manager API calls: $0.05 per 10,000.
pub const SECRET_CALL: f64 = 0.05 / 10_000.0;
/// A SIEM that pulls the compressed objects out of AWS: S3 data transfer out to the internet,
/// first 10 TB tier, $0.09 per GB. (Same-Region pulls are free; SIEMs that license by ingested
/// volume bill the uncompressed bytes, which no gzip level changes.)
pub const SIEM_TRANSFER_GB: f64 = 0.09;

/// Runs a month: every 5 minutes for 30 days.
pub const RUNS_PER_MONTH: f64 = 288.0 * 30.0;
/// The workload the issue prices.
pub const ACTIVITIES_PER_DAY: f64 = 100_000.0;
pub const ACTIVITIES_PER_MONTH: f64 = ACTIVITIES_PER_DAY * 30.0;
/// How long the objects are kept when pricing storage per gzip level.
pub const RETENTION_MONTHS: f64 = 12.0;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Dollars per CPU-second of work done in Lambda.
pub fn lambda_cpu_second() -> f64 {
    LAMBDA_MB_PER_VCPU / 1024.0 * LAMBDA_GB_SECOND
}

/// What one gzip level costs per million activities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelCost {
    pub level: u32,
    pub cpu_seconds: f64,
    pub compressed_bytes: f64,
    pub lambda: f64,
    /// Storage for [`RETENTION_MONTHS`].
    pub storage: f64,
    pub transfer: f64,
}

impl LevelCost {
    /// `cpu_seconds` and `compressed_bytes` per million activities.
    pub fn new(level: u32, cpu_seconds: f64, compressed_bytes: f64) -> LevelCost {
        let gb = compressed_bytes / GB;
        LevelCost {
            level,
            cpu_seconds,
            compressed_bytes,
            lambda: cpu_seconds * lambda_cpu_second(),
            storage: gb * S3_GB_MONTH * RETENTION_MONTHS,
            transfer: gb * SIEM_TRANSFER_GB,
        }
    }

    pub fn total(&self) -> f64 {
        self.lambda + self.storage + self.transfer
    }
}

/// What one typical scheduled run does, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunProfile {
    /// Billed duration of one run.
    pub seconds: f64,
    pub memory_mb: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
    pub dynamodb_wru: f64,
    pub dynamodb_rru: f64,
    pub put_metric_data: f64,
    pub secret_calls: f64,
    pub log_bytes: f64,
}

/// One line of the monthly bill.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub item: &'static str,
    pub basis: String,
    pub dollars: f64,
}

/// The monthly bill at [`RUNS_PER_MONTH`] runs of `run` and [`ACTIVITIES_PER_MONTH`] activities
/// of `bytes_per_activity` compressed; `metric_hours` billed hours of custom metric series a month
/// ([`metric_hours`]).
pub fn monthly(run: &RunProfile, bytes_per_activity: f64, metric_hours: f64) -> Vec<CostLine> {
    let n = RUNS_PER_MONTH;
    let gb_seconds = run.seconds * run.memory_mb / 1024.0 * n;
    let stored_gb = ACTIVITIES_PER_MONTH * bytes_per_activity / GB;
    vec![
        CostLine {
            item: "Lambda compute",
            basis: format!(
                "{n:.0} runs × {:.3} s × {:.0} MB = {gb_seconds:.0} GB-s × ${LAMBDA_GB_SECOND}",
                run.seconds, run.memory_mb
            ),
            dollars: gb_seconds * LAMBDA_GB_SECOND,
        },
        CostLine {
            item: "Lambda requests",
            basis: format!("{n:.0} × $0.20/M"),
            dollars: n * LAMBDA_REQUEST,
        },
        CostLine {
            item: "S3 PUT",
            basis: format!("{:.2}/run × {n:.0} × $0.005/1k", run.s3_puts),
            dollars: run.s3_puts * n * S3_PUT,
        },
        CostLine {
            item: "S3 GET",
            basis: format!("{:.2}/run × {n:.0} × $0.0004/1k", run.s3_gets),
            dollars: run.s3_gets * n * S3_GET,
        },
        CostLine {
            item: "S3 storage (each month's data, first month)",
            basis: format!("{stored_gb:.3} GB × ${S3_GB_MONTH}/GB-month"),
            dollars: stored_gb * S3_GB_MONTH,
        },
        CostLine {
            item: "DynamoDB writes",
            basis: format!("{:.1} WRU/run × {n:.0} × $1.25/M", run.dynamodb_wru),
            dollars: run.dynamodb_wru * n * DYNAMODB_WRU,
        },
        CostLine {
            item: "DynamoDB reads",
            basis: format!("{:.1} RRU/run × {n:.0} × $0.25/M", run.dynamodb_rru),
            dollars: run.dynamodb_rru * n * DYNAMODB_RRU,
        },
        CostLine {
            item: "CloudWatch PutMetricData",
            basis: format!("{:.2}/run × {n:.0} × $0.01/1k", run.put_metric_data),
            dollars: run.put_metric_data * n * CW_PUT_METRIC_DATA,
        },
        CostLine {
            item: "CloudWatch custom metrics",
            basis: format!(
                "{metric_hours:.0} series-hours × $0.30/{CW_HOURS_MONTH:.0} ({:.2} series always on)",
                metric_hours / CW_HOURS_MONTH
            ),
            dollars: metric_hours / CW_HOURS_MONTH * CW_CUSTOM_METRIC_MONTH,
        },
        CostLine {
            item: "CloudWatch Logs ingestion",
            basis: format!("{:.1} KB/run × {n:.0} × $0.50/GB", run.log_bytes / 1024.0),
            dollars: run.log_bytes * n / GB * CW_LOGS_GB,
        },
        CostLine {
            item: "Secrets Manager",
            basis: format!(
                "1 secret × $0.40 + {:.2} calls/run × {n:.0} × $0.05/10k",
                run.secret_calls
            ),
            dollars: SECRET_MONTH + run.secret_calls * n * SECRET_CALL,
        },
        CostLine {
            item: "SIEM transfer (pulled out of AWS)",
            basis: format!("{stored_gb:.3} GB × ${SIEM_TRANSFER_GB}/GB"),
            dollars: stored_gb * SIEM_TRANSFER_GB,
        },
    ]
}

/// Billed series-hours a month of metric series each put in a share `put_share` of the runs: an
/// hour is billed for a series when any of its [`RUNS_PER_HOUR`] runs puts it.
pub fn metric_hours(put_share: impl IntoIterator<Item = f64>) -> f64 {
    put_share
        .into_iter()
        .map(|p| (1.0 - (1.0 - p.clamp(0.0, 1.0)).powf(RUNS_PER_HOUR)) * CW_HOURS_MONTH)
        .sum()
}

/// The size DynamoDB bills an item at: attribute names plus values (strings and binaries by
/// length, numbers about one byte per two digits plus one, 3 bytes of overhead per list or map).
pub fn dynamodb_item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_bytes(value)).sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_bytes(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m.iter().map(|(k, e)| 1 + k.len() + value_bytes(e)).sum::<usize>()
        }
        _ => 0,
    }
}

/// Write units for one write of an item of `bytes` (1 KB each, rounded up).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for one strongly consistent read of an item of `bytes` (4 KB each, rounded up).
pub fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_second_costs_the_same_at_any_memory_below_one_vcpu() {
        // 1,769 MB-s per CPU-second at $0.0000133334 per GB-s
        assert!((lambda_cpu_second() - 2.303e-5).abs() < 1e-8);
    }

    #[test]
    fn a_level_is_priced_per_million() {
        // GIVEN 10 CPU-seconds and 1 GiB per million activities
        let c = LevelCost::new(6, 10.0, GB);
        // THEN Lambda, a year of storage and one transfer are added up
        assert!((c.lambda - 10.0 * lambda_cpu_second()).abs() < 1e-12);
        assert!((c.storage - 0.023 * 12.0).abs() < 1e-12);
        assert!((c.transfer - 0.09).abs() < 1e-12);
        assert!((c.total() - (c.lambda + 0.276 + 0.09)).abs() < 1e-12);
    }

    #[test]
    fn the_bill_prices_every_run() {
        let run = RunProfile {
            seconds: 1.0,
            memory_mb: 256.0,
            s3_puts: 2.0,
            dynamodb_wru: 10.0,
            put_metric_data: 1.0,
            secret_calls: 1.0,
            ..RunProfile::default()
        };
        let bill = monthly(&run, 0.0, 2.0 * CW_HOURS_MONTH);
        let line = |item: &str| bill.iter().find(|l| l.item == item).map(|l| l.dollars).unwrap();
        assert!((line("Lambda compute") - 8640.0 * 0.25 * LAMBDA_GB_SECOND).abs() < 1e-9);
        assert!((line("S3 PUT") - 8640.0 * 2.0 * 0.000_005).abs() < 1e-9);
        assert!((line("DynamoDB writes") - 8640.0 * 10.0 * 1.25e-6).abs() < 1e-9);
        assert!((line("Secrets Manager") - (0.40 + 8640.0 * 0.000_005)).abs() < 1e-9);
        assert!((line("CloudWatch custom metrics") - 0.60).abs() < 1e-9);
    }

    #[test]
    fn a_series_is_billed_for_the_hours_it_is_put_in() {
        // every run: every hour; never: no hour; one run in twelve: most hours
        assert!((metric_hours([1.0]) - 730.0).abs() < 1e-9);
        assert_eq!(metric_hours([0.0]), 0.0);
        let rare = metric_hours([1.0 / 12.0]);
        assert!(rare > 0.6 * 730.0 && rare < 0.7 * 730.0, "{rare}");
        assert!((metric_hours([1.0, 1.0, 0.0]) - 1460.0).abs() < 1e-9);
    }

    #[test]
    fn item_sizes_follow_dynamodb_rules() {
        let item: HashMap<String, AttributeValue> = [
            ("pk".to_owned(), AttributeValue::S("live".into())),
            ("version".to_owned(), AttributeValue::N("12".into())),
            ("seen".to_owned(), AttributeValue::B(vec![0u8; 900].into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(dynamodb_item_bytes(&item), (2 + 4) + (7 + 2) + (4 + 900));
        assert_eq!(write_units(915), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4097), 2.0);
    }
}
