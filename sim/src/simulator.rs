//! The simulator handle: shared state and the library API tests drive it with.
//!
//! A [`Simulator`] is a cheap clone of one `Arc`; every clone (the HTTP server's included)
//! sees the same activities, requests and fault queue. The state sits behind a std `Mutex`
//! that is never held across an `.await`. Data generation draws from its own random stream,
//! request ids and the ids of `compliance_api_accessed` activities from another, so the data
//! a `generate` call makes depends only on the seed and the earlier `generate` calls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::access_log::api_key_id;
use crate::config::SimConfig;
use crate::cursor::CursorCodec;
use crate::faults::Fault;
use crate::generate::{GenerateSpec, Generator};
use crate::ratelimit::RateLimiter;
use crate::rng::{Rng, base62_fixed, splitmix64};
use crate::seed::{Seed, SeedError, overlay};
use crate::store::{InsertError, Record, Store};

/// A strict, in-memory Compliance API Activity Feed.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    /// Accepted keys by key text.
    pub(crate) keys: HashMap<String, KeyInfo>,
    pub(crate) cursors: CursorCodec,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    pub(crate) id: String,
    pub(crate) has_scope: bool,
}

pub(crate) struct State {
    pub(crate) store: Store,
    generator: Generator,
    runtime_rng: Rng,
    /// Draws the padding of large records (its own stream: the rest of the data stays as the
    /// same seed makes it without padding).
    padding_rng: Rng,
    /// Activities generated so far (which of them are large).
    generated: u64,
    requests_seen: u64,
    pub(crate) limiter: RateLimiter,
    /// Fault slots: `None` serves its request normally.
    pub(crate) faults: VecDeque<Option<Fault>>,
    /// Keys refused with 401 from now on (by text).
    pub(crate) revoked: HashSet<String>,
    pub(crate) requests: Vec<RequestRecord>,
}

/// One activity as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimActivity {
    pub id: String,
    pub created_at: Timestamp,
    /// The exact JSON bytes served for it.
    pub raw: String,
    /// False while hidden (not yet indexed).
    pub visible: bool,
    pub organization_id: Option<String>,
    pub activity_type: String,
}

/// One API request the simulator answered (control calls under `/_sim/` are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub path: String,
    /// The query string as received, not decoded ("" when there was none).
    pub query: String,
    pub status: u16,
    pub request_id: String,
    /// The `apikey_…` id of the key used; `None` when authentication failed.
    pub api_key_id: Option<String>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        let keys = config
            .keys
            .iter()
            .map(|k| {
                let info = KeyInfo { id: api_key_id(&k.key), has_scope: k.has_scope };
                (k.key.clone(), info)
            })
            .collect();
        let state = State {
            store: Store::default(),
            generator: Generator::new(config.seed),
            runtime_rng: Rng::stream(config.seed, "runtime"),
            padding_rng: Rng::stream(config.seed, "padding"),
            generated: 0,
            requests_seen: 0,
            limiter: RateLimiter::new(config.rate_limit_per_minute),
            faults: VecDeque::new(),
            revoked: HashSet::new(),
            requests: Vec::new(),
        };
        Self {
            inner: Arc::new(Inner {
                cursors: CursorCodec::from_seed(config.seed),
                config,
                keys,
                state: Mutex::new(state),
            }),
        }
    }

    /// The configuration the simulator was built with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// The `apikey_…` id the feed shows for `key` (in `compliance_api_accessed` actors).
    pub fn api_key_id(key: &str) -> String {
        api_key_id(key)
    }

    /// Adds `spec.count` realistic activities; returns their ids in generation order.
    /// Deterministic for a given seed and sequence of `generate` calls.
    pub fn generate(&self, spec: &GenerateSpec) -> Vec<String> {
        let mut state = self.lock();
        let State { store, generator, padding_rng, generated, .. } = &mut *state;
        let batch = generator.batch(spec, |id| store.contains_id(id));
        let mut ids = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let large = self.inner.config.large_records;
        for (id, mut raw) in batch {
            if let Some(large) = large {
                if generated.is_multiple_of(large.every) {
                    raw = padded(&raw, large.bytes, padding_rng);
                }
                *generated += 1;
            }
            match Record::from_raw(&raw, !spec.hidden) {
                Ok(record) => {
                    ids.push(id);
                    records.push(record);
                }
                // The generator writes valid JSON with id and created_at; a failure here is
                // a generator bug, reported rather than served.
                Err(error) => tracing::error!(%error, %id, "generated activity refused"),
            }
        }
        if let Err(error) = store.insert_batch(records) {
            tracing::error!(%error, "generated batch refused");
            return Vec::new();
        }
        ids
    }

    /// Adds one hand-written activity (it must have a string `id` and an RFC 3339
    /// `created_at`); it is served byte for byte, trimmed of surrounding whitespace.
    pub fn insert_raw(&self, raw_json: &str, hidden: bool) -> Result<String, InsertError> {
        let record = Record::from_raw(raw_json, !hidden)?;
        let id = record.id().to_owned();
        self.lock().store.insert(record)?;
        Ok(id)
    }

    /// Adds one hand-picked activity (a [`Seed`]: type, instant, the fields that matter; the
    /// rest generated); returns its id. Draws from the generation stream like `generate`.
    pub fn seed(&self, seed: &Seed) -> Result<String, SeedError> {
        let mut state = self.lock();
        let State { store, generator, .. } = &mut *state;
        let (id, raw) =
            generator.typed(&seed.activity_type, seed.created_at, |id| store.contains_id(id));
        let raw = overlay(&raw, &seed.fields)?;
        store.insert(Record::from_raw(&raw, !seed.hidden)?)?;
        Ok(id)
    }

    /// Makes every hidden activity visible; returns how many were hidden.
    pub fn reveal_all(&self) -> usize {
        self.lock().store.reveal_all()
    }

    /// Makes the hidden activities among `ids` visible (as the API indexing them late);
    /// returns how many were hidden.
    pub fn reveal_ids<S: AsRef<str>>(&self, ids: &[S]) -> usize {
        let wanted: HashSet<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.lock().store.reveal_where(|id| wanted.contains(id))
    }

    /// Every activity, visible or not, in ascending `(created_at, id)` order.
    pub fn activities(&self) -> Vec<SimActivity> {
        self.lock()
            .store
            .records()
            .iter()
            .map(|r| SimActivity {
                id: r.id().to_owned(),
                created_at: r.created_at,
                raw: r.raw.get().to_owned(),
                visible: r.visible,
                organization_id: r.organization_id.clone(),
                activity_type: r.activity_type.clone(),
            })
            .collect()
    }

    /// Every API request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// Queues faults; each following authenticated, admitted feed request takes one, FIFO.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults.into_iter().map(Some));
    }

    /// Queues a schedule of slots: each following authenticated, admitted feed request takes
    /// one, FIFO; a `None` slot is served normally. See [`Fault::random_schedule`].
    pub fn push_schedule(&self, slots: impl IntoIterator<Item = Option<Fault>>) {
        self.lock().faults.extend(slots);
    }

    /// Fault slots queued and not yet taken (clean slots included).
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }

    /// Drops every queued slot; returns them, in order (so a test can tell which faults were
    /// taken).
    pub fn clear_faults(&self) -> Vec<Option<Fault>> {
        self.lock().faults.drain(..).collect()
    }

    /// Revokes `key`, as deleting it in the console does: every later request with it gets 401
    /// `authentication_error`, like an unknown key. (The [`Fault::RevokeKey`] fault does the
    /// same for whichever key makes the request that takes it.)
    pub fn revoke_key(&self, key: &str) {
        self.lock().revoked.insert(key.to_owned());
    }

    /// The simulator's "now".
    pub fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every change is one step),
        // so keep serving rather than poisoning every later test request.
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// `req_` and 24 base62 characters: 11 from a bijective scramble of a counter (so never
    /// repeated), 13 random.
    pub(crate) fn next_request_id(&mut self) -> String {
        self.requests_seen += 1;
        let mut counter = self.requests_seen;
        let unique = splitmix64(&mut counter);
        format!("req_{}{}", base62_fixed(unique, 11), self.runtime_rng.base62(13))
    }

    /// A fresh activity id for a `compliance_api_accessed` record.
    pub(crate) fn next_activity_id(&mut self) -> String {
        loop {
            let id = self.runtime_rng.prefixed_id("activity_");
            if !self.store.contains_id(&id) {
                return id;
            }
        }
    }
}

/// `raw` (a generated JSON object) with a last field `_sim_padding` of `bytes` random letters.
fn padded(raw: &str, bytes: usize, rng: &mut Rng) -> String {
    let body = raw.trim_end().strip_suffix('}').unwrap_or(raw);
    let mut out = String::with_capacity(raw.len() + bytes + 20);
    out.push_str(body);
    out.push_str(r#","_sim_padding":""#);
    out.extend((0..bytes).map(|_| char::from(b'a' + (rng.below(26) as u8))));
    out.push_str("\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(count: usize, hidden: bool) -> GenerateSpec {
        GenerateSpec {
            count,
            from: "2026-04-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-02T00:00:00Z".parse().unwrap(),
            hidden,
        }
    }

    #[test]
    fn one_activity_in_every_n_is_padded_to_the_size_asked_and_stays_valid_json() {
        // GIVEN a simulator making one generated activity in five large (1,000 bytes)
        let large = crate::config::LargeRecords { every: 5, bytes: 1000 };
        let sim = Simulator::new(SimConfig { large_records: Some(large), ..SimConfig::default() });
        let plain = Simulator::new(SimConfig::default());
        // WHEN 12 then 8 activities are generated
        let mut ids = sim.generate(&spec(12, false));
        ids.extend(sim.generate(&spec(8, false)));
        // THEN the 1st, 6th, 11th, 16th in generation order carry the padding, across calls
        let by_id: std::collections::HashMap<String, String> =
            sim.activities().into_iter().map(|a| (a.id.clone(), a.raw.clone())).collect();
        let padded: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| by_id[*id].contains("_sim_padding"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(padded, [0, 5, 10, 15]);
        for id in &ids {
            let v: serde_json::Value = serde_json::from_str(&by_id[id]).unwrap();
            if let Some(pad) = v.get("_sim_padding") {
                assert_eq!(pad.as_str().unwrap().len(), 1000);
                assert!(by_id[id].len() > 1000);
            }
        }
        // AND the rest of the data is what the same seed makes without padding
        plain.generate(&spec(12, false));
        plain.generate(&spec(8, false));
        let plain_ids: Vec<String> = plain.activities().into_iter().map(|a| a.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        let mut plain_sorted = plain_ids;
        plain_sorted.sort();
        assert_eq!(sorted, plain_sorted);
    }

    #[test]
    fn generate_returns_new_ids_and_stores_them_sorted() {
        // GIVEN a simulator
        let sim = Simulator::new(SimConfig::default());
        // WHEN generating 50 activities
        let ids = sim.generate(&spec(50, false));
        // THEN 50 distinct ids are stored in (created_at, id) order, all visible
        let activities = sim.activities();
        assert_eq!(ids.len(), 50);
        assert_eq!(activities.len(), 50);
        assert!(
            activities
                .windows(2)
                .all(|w| (w[0].created_at, &w[0].id) < (w[1].created_at, &w[1].id))
        );
        assert!(activities.iter().all(|a| a.visible));
    }

    #[test]
    fn generation_is_deterministic_by_seed_and_call_sequence() {
        let a = Simulator::new(SimConfig::default());
        let b = Simulator::new(SimConfig::default());
        let ids_a = [a.generate(&spec(20, false)), a.generate(&spec(5, true))];
        let ids_b = [b.generate(&spec(20, false)), b.generate(&spec(5, true))];
        assert_eq!(ids_a, ids_b);
        assert_eq!(a.activities(), b.activities());
    }

    #[test]
    fn hidden_activities_are_revealed_together() {
        let sim = Simulator::new(SimConfig::default());
        sim.generate(&spec(3, false));
        sim.generate(&spec(4, true));
        assert_eq!(sim.activities().iter().filter(|a| !a.visible).count(), 4);
        assert_eq!(sim.reveal_all(), 4);
        assert!(sim.activities().iter().all(|a| a.visible));
    }

    #[test]
    fn chosen_hidden_activities_are_revealed_alone() {
        let sim = Simulator::new(SimConfig::default());
        let hidden = sim.generate(&spec(4, true));
        assert_eq!(sim.reveal_ids(&hidden[..2]), 2);
        assert_eq!(sim.reveal_ids(&hidden[..2]), 0);
        let visible: Vec<String> =
            sim.activities().into_iter().filter(|a| a.visible).map(|a| a.id).collect();
        let mut expected = hidden[..2].to_vec();
        expected.sort();
        let mut visible = visible;
        visible.sort();
        assert_eq!(visible, expected);
    }

    #[test]
    fn insert_raw_keeps_the_bytes_and_refuses_reused_ids() {
        let sim = Simulator::new(SimConfig::default());
        let raw = r#"{"id":"activity_hand","created_at":"2026-04-01T00:00:00Z","type":"x","note":"\u00e9"}"#;
        assert_eq!(sim.insert_raw(raw, false).unwrap(), "activity_hand");
        assert_eq!(sim.activities()[0].raw, raw);
        assert!(matches!(sim.insert_raw(raw, false), Err(InsertError::DuplicateId(_))));
    }

    #[test]
    fn request_ids_are_unique_and_well_formed() {
        let sim = Simulator::new(SimConfig::default());
        let mut state = sim.lock();
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| state.next_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            let tail = id.strip_prefix("req_").unwrap();
            assert_eq!(tail.len(), 24);
            assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }
}
