//! A strict local simulator of the Anthropic Compliance API Activity Feed
//! (`GET /v1/compliance/activities`), for the collector's tests and the demo.
//!
//! Strict means it implements the documented semantics exactly and refuses everything the
//! docs do not allow (unknown parameters, bad cursors, wrong headers), so client bugs show up
//! here rather than against the real API. Use it in-process ([`Simulator::spawn`]) or as the
//! `compliance-sim` binary driven through the `/_sim/` control endpoints.
//!
//! Layout: pure parts (`query`, `cursor`, `page`, `ratelimit`, `generate`, `seed`, `faults`) decide;
//! `simulator` holds the shared state; `feed` answers a request in the API's order of checks;
//! `http` and `control` are the axum edge; `cli` parses the binary's arguments.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use compliance_sim::{GenerateSpec, SimConfig, Simulator};
//! let sim = Simulator::new(SimConfig::default());
//! sim.generate(&GenerateSpec {
//!     count: 1000,
//!     from: "2026-04-01T00:00:00Z".parse().unwrap(),
//!     to: "2026-04-02T00:00:00Z".parse().unwrap(),
//!     hidden: false,
//! });
//! let server = sim.spawn().await?;
//! println!("{}/v1/compliance/activities", server.base_url);
//! # Ok(()) }
//! ```

mod access_log;
pub mod cli;
mod config;
mod control;
mod cursor;
mod faults;
mod feed;
mod generate;
mod http;
mod jsonw;
mod page;
mod query;
mod ratelimit;
mod reply;
mod rng;
mod seed;
mod simulator;
mod store;
mod timefmt;

pub use config::{ApiKey, Clock, DEFAULT_API_KEY, LargeRecords, ManualClock, SimConfig};
pub use faults::{Fault, RecordField};
pub use feed::{API_VERSION, FEED_PATH};
pub use generate::{ACTIVITY_TYPES, GenerateSpec};
pub use http::SimServer;
pub use seed::{Seed, SeedError};
pub use simulator::{RequestRecord, SimActivity, Simulator};
pub use store::InsertError;
