//! The run manifest: evidence for auditors of what one run asked, got and wrote.
//!
//! One JSON object per run under `{prefix}_manifests/{stream kind}/year=…/month=…/day=…/`, a
//! segment starting with `_` that Athena and the SIEMs skip. It records what the Compliance API's
//! own attestation advice asks for: the window and query, the starting and final cursors, every
//! page with its `request-id` and counts, every object with its key, count, first and last
//! activity id and SHA-256, the totals and the duplicates dropped. Written if absent, like the
//! activity objects, so a manifest is never rewritten. It lives beside the handler because the
//! handler composes it: the run's report, plus who ran and against what.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::archive::key::safe_name;
use crate::sync::{ObjectRecord, PageRecord, RunReport, StopReason};

#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    pub manifest_version: u32,
    pub run_id: &'a str,
    pub function_name: &'a str,
    pub function_version: &'a str,
    pub collector_version: &'static str,
    pub stream: &'a str,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: &'a str,
    pub error_type: Option<&'a str>,
    pub endpoint: &'a str,
    pub organization_ids: &'a [String],
    pub window_from: Option<Timestamp>,
    pub window_to: Option<Timestamp>,
    pub watermark: Option<Timestamp>,
    pub start_cursor: Option<&'a str>,
    pub final_cursor: Option<&'a str>,
    pub stop_reason: Option<StopReason>,
    pub totals: Totals,
    pub pages: &'a [PageRecord],
    pub objects: &'a [ObjectRecord],
    pub recovered_objects: &'a [String],
}

/// The run's figures, as the report has them. `activities_delivered` is the report's
/// `delivered` and the `EventsProcessed` metric: one figure, named for the auditor here.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Totals {
    #[serde(rename = "activities_delivered")]
    pub delivered: u64,
    pub duplicates_dropped: u64,
    pub late_arrivals: u64,
    pub objects_written: u64,
    pub objects_already_present: u64,
    pub bytes_written: u64,
    pub pages: u32,
    pub requests: u32,
}

/// Who ran and against what, beside the report.
pub struct Context<'a> {
    pub run_id: &'a str,
    pub function_name: &'a str,
    pub function_version: &'a str,
    pub stream: &'a str,
    pub endpoint: &'a str,
    pub organization_ids: &'a [String],
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub error_type: Option<&'a str>,
}

impl<'a> Manifest<'a> {
    pub fn new(ctx: &Context<'a>, report: &'a RunReport) -> Manifest<'a> {
        Manifest {
            manifest_version: 1,
            run_id: ctx.run_id,
            function_name: ctx.function_name,
            function_version: ctx.function_version,
            collector_version: env!("CARGO_PKG_VERSION"),
            stream: ctx.stream,
            started_at: ctx.started_at,
            finished_at: ctx.finished_at,
            outcome: if ctx.error_type.is_some() { "failed" } else { "ok" },
            error_type: ctx.error_type,
            endpoint: ctx.endpoint,
            organization_ids: ctx.organization_ids,
            window_from: report.window_from,
            window_to: report.window_to,
            watermark: report.watermark,
            start_cursor: report.start_cursor.as_ref().and_then(|c| c.as_deref()),
            final_cursor: report.final_cursor.as_deref(),
            stop_reason: report.stop_reason,
            totals: Totals::from(report),
            pages: &report.page_log,
            objects: &report.object_log,
            recovered_objects: &report.recovered_keys,
        }
    }
}

impl From<&RunReport> for Totals {
    fn from(report: &RunReport) -> Totals {
        Totals {
            delivered: report.delivered,
            duplicates_dropped: report.duplicates_dropped,
            late_arrivals: report.late_arrivals,
            objects_written: report.objects_written,
            objects_already_present: report.objects_already_present,
            bytes_written: report.bytes_written,
            pages: report.pages,
            requests: report.requests,
        }
    }
}

/// `{prefix}_manifests/{kind}/year=YYYY/month=MM/day=DD/{started}_{run_id}.json`.
pub fn manifest_key(prefix: &str, stream: &str, started_at: Timestamp, run_id: &str) -> String {
    let kind = stream.split('#').next().unwrap_or("live");
    let t = started_at.to_zoned_datetime(TimeZone::UTC);
    let safe_run = safe_name(run_id);
    format!(
        "{prefix}_manifests/{kind}/year={:04}/month={:02}/day={:02}/{}_{safe_run}.json",
        t.year(),
        t.month(),
        t.day(),
        t.strftime("%Y%m%dT%H%M%S%.3fZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_live_under_an_underscore_segment() {
        let key =
            manifest_key("a/", "backfill#x#y", "2026-03-04T05:06:07.123Z".parse().unwrap(), "r/1");
        assert_eq!(
            key,
            "a/_manifests/backfill/year=2026/month=03/day=04/20260304T050607.123Z_r_1.json"
        );
    }

    #[test]
    fn the_totals_are_the_reports_figures_under_the_manifests_names() {
        // GIVEN a report with figures
        let report = RunReport { delivered: 3, pages: 2, requests: 4, ..RunReport::default() };
        // WHEN its totals are serialized
        let totals = serde_json::to_value(Totals::from(&report)).unwrap();
        // THEN the delivered figure is the manifest's activities_delivered
        assert_eq!(totals["activities_delivered"], 3);
        assert_eq!((totals["pages"].as_u64(), totals["requests"].as_u64()), (Some(2), Some(4)));
        assert!(totals.get("delivered").is_none());
    }
}
