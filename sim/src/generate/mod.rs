//! Realistic generated activities.
//!
//! Each activity gets a fresh `activity_` id, a `created_at` drawn uniformly from the
//! requested range (written with 0, 3 or 6 fractional digits, about a third each, always `Z`;
//! about 1 in 20 reuses the previous instant so ties on `created_at` occur), a type from
//! the 516 documented names, a plausible actor and type-specific fields, in the docs' field
//! order. About 10% are organization-less (sign-in, SSO, Compliance API types), about 1 in
//! 20 uses `\uXXXX` escaping instead of raw UTF-8, about 1 in 500 is 20 to 60 KB.
//!
//! Invariant: the output depends only on the seed and the sequence of calls (the generator
//! owns its random stream; serving requests never draws from it).

mod fields;
mod world;

use jiff::Timestamp;

use crate::jsonw::{Escaping, Obj};
use crate::rng::Rng;
use crate::timefmt::{format_utc, truncate};
use fields::{ActorKind, Ctx};
use world::World;

/// The 516 documented activity type names, one a line.
pub const ACTIVITY_TYPES: &str = include_str!("../../data/activity-types.txt");

/// What [`crate::Simulator::generate`] should add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    pub count: usize,
    /// `created_at` is spread uniformly in `[from, to)`; an empty range puts all at `from`.
    pub from: Timestamp,
    pub to: Timestamp,
    /// Not yet indexed (a late arrival): invisible until revealed.
    pub hidden: bool,
}

/// Types that belong to no organization (`organization_id` null).
fn is_organization_less(activity_type: &str) -> bool {
    let t = activity_type;
    t == "compliance_api_accessed"
        || t == "anonymous_mobile_login_attempted"
        || t == "social_login_succeeded"
        || t == "user_logged_out"
        || t.starts_with("sso_login_")
        || t == "sso_second_factor_magic_link"
        || t.starts_with("magic_link_login_")
        || t.starts_with("phone_code_")
        || t.starts_with("step_up_authentication_")
}

/// Everyday types drawn more often than the rest, as in a real feed.
const COMMON_TYPES: [&str; 10] = [
    "claude_chat_viewed",
    "claude_chat_created",
    "claude_chat_updated",
    "claude_file_uploaded",
    "claude_file_viewed",
    "claude_project_viewed",
    "claude_project_document_uploaded",
    "claude_artifact_viewed",
    "claude_artifact_created",
    "claude_chat_deleted",
];

/// Makes activities from a seeded stream.
pub(crate) struct Generator {
    world: World,
    organization_less: Vec<&'static str>,
    organization_bound: Vec<&'static str>,
    rng: Rng,
}

impl Generator {
    pub(crate) fn new(seed: u64) -> Self {
        let (organization_less, organization_bound) = ACTIVITY_TYPES
            .lines()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .partition(|t| is_organization_less(t));
        Self {
            world: World::new(seed),
            organization_less,
            organization_bound,
            rng: Rng::stream(seed, "data"),
        }
    }

    /// `spec.count` new activities as `(id, raw JSON)`, with ids for which `taken` is false.
    pub(crate) fn batch(
        &mut self,
        spec: &GenerateSpec,
        taken: impl Fn(&str) -> bool,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(spec.count);
        let mut fresh = std::collections::HashSet::with_capacity(spec.count);
        let mut previous: Option<(Timestamp, String)> = None;
        for _ in 0..spec.count {
            let id = loop {
                let id = self.rng.prefixed_id("activity_");
                if !taken(&id) && !fresh.contains(&id) {
                    break id;
                }
            };
            fresh.insert(id.clone());
            let (created_at, text) = match previous.take() {
                Some(prev) if self.rng.chance(1, 20) => prev,
                _ => self.draw_created_at(spec.from, spec.to),
            };
            let raw = self.activity(&id, created_at, &text);
            previous = Some((created_at, text));
            out.push((id, raw));
        }
        out
    }

    fn draw_type(&mut self) -> &'static str {
        let pool: &[&'static str] = if self.rng.chance(1, 10) {
            &self.organization_less
        } else if self.rng.chance(2, 5) {
            &COMMON_TYPES
        } else {
            &self.organization_bound
        };
        match pool {
            [] => "claude_chat_viewed",
            some => some[self.rng.index(some.len())],
        }
    }

    /// An instant in `[from, to)` and its text at a random precision.
    fn draw_created_at(&mut self, from: Timestamp, to: Timestamp) -> (Timestamp, String) {
        let digits = [0, 3, 6][self.rng.index(3)];
        let span = to.as_nanosecond() - from.as_nanosecond();
        if span <= 0 {
            let digits = exact_digits(from);
            return (from, format_utc(from, digits));
        }
        let offset = self.rng.below_u128(span as u128) as i128;
        let exact = Timestamp::from_nanosecond(from.as_nanosecond() + offset).unwrap_or(from);
        // Truncating can fall before `from`; then round up, or use a finer precision if the
        // range is too narrow for the coarse one.
        for d in [digits, 3, 6, 9].into_iter().filter(|&d| d >= digits) {
            let mut cut = truncate(exact, d);
            if cut < from {
                let unit = 10i128.pow(9 - d);
                cut = Timestamp::from_nanosecond(cut.as_nanosecond() + unit).unwrap_or(exact);
            }
            if from <= cut && cut < to {
                return (cut, format_utc(cut, d));
            }
        }
        (exact, format_utc(exact, 9))
    }

    fn activity(&mut self, id: &str, created_at: Timestamp, created_text: &str) -> String {
        let activity_type = self.draw_type();
        let escaping = if self.rng.chance(1, 20) { Escaping::Ascii } else { Escaping::Minimal };
        let large = self.rng.chance(1, 500);
        self.write_activity(id, created_at, created_text, activity_type, escaping, large)
    }

    /// One activity of `activity_type` (any name, documented or not) at `created_at`, with a
    /// fresh id for which `taken` is false: a realistic actor and type-specific fields, plain
    /// UTF-8, ordinary size. Returns `(id, raw JSON)`.
    pub(crate) fn typed(
        &mut self,
        activity_type: &str,
        created_at: Timestamp,
        taken: impl Fn(&str) -> bool,
    ) -> (String, String) {
        let id = loop {
            let id = self.rng.prefixed_id("activity_");
            if !taken(&id) {
                break id;
            }
        };
        let text = format_utc(created_at, exact_digits(created_at));
        let raw =
            self.write_activity(&id, created_at, &text, activity_type, Escaping::Minimal, false);
        (id, raw)
    }

    fn write_activity(
        &mut self,
        id: &str,
        created_at: Timestamp,
        created_text: &str,
        activity_type: &str,
        escaping: Escaping,
        large: bool,
    ) -> String {
        let org =
            (!is_organization_less(activity_type)).then(|| self.rng.index(self.world.orgs.len()));
        let rng = &mut self.rng;
        let world = &self.world;
        let user_org = match org {
            Some(i) => i,
            None => rng.index(world.orgs.len()),
        };
        let user = world.user_of(rng, user_org);
        let ctx = Ctx { world, org, user, created_at };
        let actor = ActorKind::for_type(activity_type, rng);
        let org_id = org.map(|i| world.orgs[i].id.as_str());
        let org_uuid = org.map(|i| world.orgs[i].uuid.as_str());

        let mut out = String::with_capacity(if large { 64 * 1024 } else { 512 });
        let mut o = Obj::open(&mut out, escaping);
        if activity_type == "anthropic_access" {
            // The docs' example of this type has its own field order; keep it.
            let accessed = fields::accessed_at(created_at, rng);
            o.str("id", id)
                .str("type", activity_type)
                .str("created_at", created_text)
                .str("accessed_at", &accessed)
                .opt_str("organization_id", org_id)
                .obj("actor", |a| fields::write_actor(a, actor, &ctx, rng));
            fields::write_anthropic_access_tail(&mut o, rng);
            o.opt_str("organization_uuid", org_uuid);
        } else {
            o.str("id", id)
                .str("created_at", created_text)
                .opt_str("organization_id", org_id)
                .opt_str("organization_uuid", org_uuid)
                .obj("actor", |a| fields::write_actor(a, actor, &ctx, rng))
                .str("type", activity_type);
            fields::write_details(&mut o, activity_type, &ctx, rng);
        }
        if large {
            fields::write_large(&mut o, rng);
        }
        o.close();
        out
    }
}

/// The fewest of 0, 3, 6, 9 fractional digits that write `at` exactly.
fn exact_digits(at: Timestamp) -> u32 {
    [0, 3, 6].into_iter().find(|&d| truncate(at, d) == at).unwrap_or(9)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn spec(count: usize) -> GenerateSpec {
        GenerateSpec {
            count,
            from: "2026-04-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-08T00:00:00Z".parse().unwrap(),
            hidden: false,
        }
    }

    fn sample(count: usize) -> Vec<serde_json::Value> {
        Generator::new(1)
            .batch(&spec(count), |_| false)
            .into_iter()
            .map(|(_, raw)| serde_json::from_str(&raw).unwrap())
            .collect()
    }

    #[test]
    fn there_are_516_documented_types() {
        assert_eq!(ACTIVITY_TYPES.lines().filter(|l| !l.trim().is_empty()).count(), 516);
    }

    #[test]
    fn the_same_seed_and_calls_give_the_same_bytes() {
        let a = Generator::new(5).batch(&spec(200), |_| false);
        let b = Generator::new(5).batch(&spec(200), |_| false);
        let c = Generator::new(6).batch(&spec(200), |_| false);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_type_and_every_actor_appears_in_a_large_sample() {
        // GIVEN 30 000 generated activities
        let records = sample(30_000);
        // THEN all 516 types and all 11 actor variants occur
        let types: HashSet<&str> = records.iter().filter_map(|r| r["type"].as_str()).collect();
        assert_eq!(types.len(), 516);
        let actors: HashSet<&str> =
            records.iter().filter_map(|r| r["actor"]["type"].as_str()).collect();
        for kind in ActorKind::ALL {
            assert!(actors.contains(kind.type_name()), "{}", kind.type_name());
        }
        let providers: HashSet<&str> =
            records.iter().filter_map(|r| r["actor"]["provider"]["type"].as_str()).collect();
        assert_eq!(providers, HashSet::from(["aws", "azure", "gcp", "oidc"]));
    }

    #[test]
    fn about_a_tenth_of_activities_have_no_organization() {
        let records = sample(5_000);
        let orgless = records.iter().filter(|r| r["organization_id"].is_null()).count();
        assert!((400..=600).contains(&orgless), "{orgless}");
        for r in records.iter().filter(|r| r["organization_id"].is_null()) {
            assert!(r["organization_uuid"].is_null());
            assert!(is_organization_less(r["type"].as_str().unwrap()));
        }
        let orgs: HashSet<&str> =
            records.iter().filter_map(|r| r["organization_id"].as_str()).collect();
        assert_eq!(orgs.len(), 3);
    }

    #[test]
    fn timestamps_mix_three_precisions_and_stay_in_range() {
        // GIVEN 3 000 activities
        let batch = Generator::new(1).batch(&spec(3_000), |_| false);
        let s = spec(0);
        let mut by_digits: HashMap<usize, usize> = HashMap::new();
        for (_, raw) in &batch {
            let value: serde_json::Value = serde_json::from_str(raw).unwrap();
            let text = value["created_at"].as_str().unwrap();
            // THEN each is Z-terminated with 0, 3 or 6 fractional digits, within [from, to)
            assert!(text.ends_with('Z'));
            let digits = text.split_once('.').map_or(0, |(_, f)| f.len() - 1);
            *by_digits.entry(digits).or_default() += 1;
            let at: Timestamp = text.parse().unwrap();
            assert!(s.from <= at && at < s.to);
        }
        // AND each precision is roughly a third
        for digits in [0, 3, 6] {
            let n = by_digits.get(&digits).copied().unwrap_or(0);
            assert!((800..=1200).contains(&n), "{digits} digits: {n}");
        }
        assert_eq!(by_digits.len(), 3);
    }

    #[test]
    fn records_follow_the_documented_field_order() {
        let batch = Generator::new(1).batch(&spec(50), |_| false);
        for (id, raw) in batch {
            if raw.contains("\"type\":\"anthropic_access\"") {
                continue;
            }
            let prefix = format!("{{\"id\":\"{id}\",\"created_at\":\"");
            assert!(raw.starts_with(&prefix), "{raw}");
            let org = raw.find("\"organization_id\"").unwrap();
            let uuid = raw.find("\"organization_uuid\"").unwrap();
            let actor = raw.find("\"actor\"").unwrap();
            assert!(org < uuid && uuid < actor);
        }
    }

    #[test]
    fn some_records_are_large_and_some_need_escapes() {
        let batch = Generator::new(1).batch(&spec(3_000), |_| false);
        let large = batch.iter().filter(|(_, raw)| raw.len() >= 20_000).count();
        assert!((1..=20).contains(&large), "{large}");
        assert!(batch.iter().all(|(_, raw)| raw.len() <= 64 * 1024));
        assert!(batch.iter().any(|(_, raw)| raw.contains("\\\"")));
        assert!(batch.iter().any(|(_, raw)| raw.contains("\\\\")));
        assert!(batch.iter().any(|(_, raw)| raw.contains("\\n")));
        assert!(batch.iter().any(|(_, raw)| raw.contains("\\u00")));
        assert!(batch.iter().any(|(_, raw)| raw.contains('日')));
        assert!(batch.iter().any(|(_, raw)| raw.contains('é')));
    }

    #[test]
    fn some_activities_share_an_instant() {
        let batch = Generator::new(1).batch(&spec(1_000), |_| false);
        let mut seen = HashSet::new();
        let ties = batch
            .iter()
            .map(|(_, raw)| {
                let v: serde_json::Value = serde_json::from_str(raw).unwrap();
                v["created_at"].as_str().unwrap().to_owned()
            })
            .filter(|t| !seen.insert(t.clone()))
            .count();
        assert!(ties > 10, "{ties}");
    }

    #[test]
    fn an_empty_range_puts_everything_at_from() {
        let from: Timestamp = "2026-04-01T00:00:00.5Z".parse().unwrap();
        let batch = Generator::new(1)
            .batch(&GenerateSpec { count: 3, from, to: from, hidden: false }, |_| false);
        for (_, raw) in batch {
            assert!(raw.contains("\"created_at\":\"2026-04-01T00:00:00.500Z\""));
        }
    }

    #[test]
    fn narrow_ranges_are_respected_at_every_precision() {
        // GIVEN a range of one microsecond that starts mid-second
        let from: Timestamp = "2026-04-01T00:00:00.123456Z".parse().unwrap();
        let to: Timestamp = "2026-04-01T00:00:00.123457Z".parse().unwrap();
        let batch = Generator::new(1)
            .batch(&GenerateSpec { count: 30, from, to, hidden: false }, |_| false);
        // THEN every created_at is still inside it
        for (_, raw) in batch {
            let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
            let at: Timestamp = v["created_at"].as_str().unwrap().parse().unwrap();
            assert!(from <= at && at < to);
        }
    }

    #[test]
    fn ids_already_taken_are_never_produced() {
        let first = Generator::new(1).batch(&spec(5), |_| false);
        let taken: HashSet<String> = first.iter().map(|(id, _)| id.clone()).collect();
        let second = Generator::new(1).batch(&spec(5), |id| taken.contains(id));
        assert!(second.iter().all(|(id, _)| !taken.contains(id)));
    }
}
