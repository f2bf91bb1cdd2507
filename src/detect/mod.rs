//! Detections: Sigma rules evaluated over the archive's activity objects (design.md,
//! "Detections (contract)").
//!
//! The pure core, one job a file: [`packs`] (the shipped rules and the choice among them),
//! [`rules`] (YAML to a compiled [`rules::RuleSet`], bad files reported by name), [`evaluate`]
//! (one NDJSON object to matches), [`prefilter`] (the activity types worth a full parse), [`alert`] (the alert and its deterministic id),
//! [`correlation`] (windows across objects as a pure state transition), [`findings`] (the
//! findings object and its key) and [`session`] (correlation state in memory, for the CLI and the
//! rule tests). Nothing here does I/O beyond reading the bytes it is given.

pub mod alert;
pub mod correlation;
pub mod evaluate;
pub mod findings;
pub mod packs;
pub mod prefilter;
pub mod rules;
pub mod session;
