//! Integration tests of compliance-sim, over real HTTP on 127.0.0.1.
//!
//! Table of contents:
//! - `paging`: asc/desc paging, before_id, cursors, hidden records, raw bytes
//! - `filters`: every query filter and time bound
//! - `errors`: every 400, 401, 403, 404 and the error body and headers
//! - `rate_limit`: rate-limit headers and 429
//! - `access_log`: the `compliance_api_accessed` record of each request
//! - `faults`: the scripted fault queue
//! - `determinism`: same seed, same data and cursors
//! - `seeds`: hand-picked activities, served with the fields asked
//! - `control`: the `/_sim/` endpoints
//! - `binary`: the `compliance-sim` process contract

mod support;

mod access_log;
mod binary;
mod control;
mod determinism;
mod errors;
mod faults;
mod filters;
mod paging;
mod rate_limit;
mod seeds;
