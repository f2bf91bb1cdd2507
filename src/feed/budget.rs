//! The page body budget: the most bytes one response body may take, from the function's memory.
//!
//! A page of 5,000 activities of 50 KB is 250 MB, twice a 128 MB function. The feed client never
//! reads a body larger than the budget whole: it refuses one whose `content-length` says so, or
//! cuts a chunked one as soon as its bytes pass the budget, and asks for the same page again with
//! half the `limit` ([`halve`]). The budget is a quarter of the function's memory: the page's
//! parsed form (views into the body, plus each activity's id and time), the gzip buffers of the
//! objects being written, the SDK clients and the runtime share the rest.

/// One MiB. Lambda's "MB" of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is a MiB.
const MIB: u64 = 1 << 20;

/// The function's memory is divided by this to give the budget.
pub const MEMORY_SHARE: u64 = 4;

/// The budget is never smaller than this, whatever the memory says: every activity the API
/// documents is far below it, and a halving below one record cannot help anyway.
pub const MIN_BODY_BUDGET: u64 = MIB;

/// The variable Lambda sets to the function's memory, in MB.
pub const MEMORY_SIZE_VARIABLE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";

/// The most bytes one page body may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyBudget {
    bytes: u64,
}

impl BodyBudget {
    /// Outside Lambda (tests, the demo, a developer's machine), where no memory size is set:
    /// 64 MiB, the budget of a 256 MB function and the size up to which a `content-length` was
    /// already trusted to presize a body. A page of 5,000 ordinary activities (1–2 KB each) is
    /// well below; a workstation has that to spare, and a misbehaving server still cannot make
    /// the process read an unbounded body.
    pub const OUTSIDE_LAMBDA: BodyBudget = BodyBudget { bytes: 64 * MIB };

    /// A quarter of `memory_mb` MiB, at least [`MIN_BODY_BUDGET`]: 32 MiB at 128 MB.
    pub fn from_memory_size(memory_mb: u64) -> BodyBudget {
        let bytes = memory_mb.saturating_mul(MIB) / MEMORY_SHARE;
        BodyBudget { bytes: bytes.max(MIN_BODY_BUDGET) }
    }

    /// A budget of exactly `bytes` (at least one), for tests and the bench.
    pub fn from_bytes(bytes: u64) -> BodyBudget {
        BodyBudget { bytes: bytes.max(1) }
    }

    /// From [`MEMORY_SIZE_VARIABLE`] through `lookup`: absent → [`BodyBudget::OUTSIDE_LAMBDA`].
    /// Lambda always sets it to a whole number; anything else is logged and the outside-Lambda
    /// budget used, since a wrong budget is no reason to stop collecting.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> BodyBudget {
        match lookup(MEMORY_SIZE_VARIABLE).map(|v| v.trim().to_owned()) {
            None => BodyBudget::OUTSIDE_LAMBDA,
            Some(v) if v.is_empty() => BodyBudget::OUTSIDE_LAMBDA,
            Some(v) => match v.parse::<u64>() {
                Ok(mb) if mb > 0 => BodyBudget::from_memory_size(mb),
                _ => {
                    tracing::warn!(value = %v, "{MEMORY_SIZE_VARIABLE} is not a number of MB; using the default body budget");
                    BodyBudget::OUTSIDE_LAMBDA
                }
            },
        }
    }

    /// Reads the process environment, once per cold start.
    pub fn from_env() -> BodyBudget {
        BodyBudget::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn bytes(self) -> u64 {
        self.bytes
    }

    /// Whether a page served whole at `limit` with a body of `body_bytes` says the next page
    /// may ask for twice as many: it was full and took at most a quarter of the budget, so
    /// twice as many activities of that size would take at most half. The margin keeps one
    /// large record among small ones from having the limit swing up and down page by page.
    pub fn may_grow(self, body_bytes: u64) -> bool {
        body_bytes.saturating_mul(4) <= self.bytes
    }
}

/// The next `limit` after a body over the budget: half, never below one.
pub fn halve(limit: u32) -> u32 {
    (limit / 2).max(1)
}

/// The `id` of the page's first activity, read from the first bytes of a body that was cut or
/// refused, when the activity starts with it (`{"data":[{"id":"activity_…"`, as the API serves
/// them). `None` when the body starts otherwise: another field first, or too few bytes.
pub fn first_activity_id(head: &[u8]) -> Option<String> {
    let rest = skip_ws(head.strip_prefix(b"{")?);
    let rest = skip_ws(rest.strip_prefix(b"\"data\"")?);
    let rest = skip_ws(rest.strip_prefix(b":")?);
    let rest = skip_ws(rest.strip_prefix(b"[")?);
    let rest = skip_ws(rest.strip_prefix(b"{")?);
    let rest = skip_ws(rest.strip_prefix(b"\"id\"")?);
    let rest = skip_ws(rest.strip_prefix(b":")?);
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|b| *b == b'"' || *b == b'\\')?;
    if rest.get(end) != Some(&b'"') || end == 0 {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_quarter_of_the_functions_memory() {
        assert_eq!(BodyBudget::from_memory_size(128).bytes(), 32 << 20);
        assert_eq!(BodyBudget::from_memory_size(1024).bytes(), 256 << 20);
        assert_eq!(BodyBudget::from_memory_size(10_240).bytes(), 2560 << 20);
        // A tiny (or mistyped) memory size still leaves room for one ordinary activity.
        assert_eq!(BodyBudget::from_memory_size(1).bytes(), MIN_BODY_BUDGET);
    }

    #[test]
    fn the_memory_size_comes_from_lambdas_variable_with_a_default_outside_it() {
        let env = |value: Option<&'static str>| {
            move |name: &str| {
                (name == MEMORY_SIZE_VARIABLE).then_some(value).flatten().map(str::to_owned)
            }
        };
        assert_eq!(BodyBudget::from_lookup(env(Some("128"))).bytes(), 32 << 20);
        assert_eq!(BodyBudget::from_lookup(env(Some(" 512 "))).bytes(), 128 << 20);
        assert_eq!(BodyBudget::from_lookup(env(None)), BodyBudget::OUTSIDE_LAMBDA);
        assert_eq!(BodyBudget::from_lookup(env(Some(""))), BodyBudget::OUTSIDE_LAMBDA);
        assert_eq!(BodyBudget::from_lookup(env(Some("lots"))), BodyBudget::OUTSIDE_LAMBDA);
        assert_eq!(BodyBudget::from_lookup(env(Some("0"))), BodyBudget::OUTSIDE_LAMBDA);
        assert_eq!(BodyBudget::OUTSIDE_LAMBDA.bytes(), 64 << 20);
    }

    #[test]
    fn halving_goes_down_to_one_and_stays() {
        let mut limit = 5000;
        let mut seen = Vec::new();
        while limit > 1 {
            limit = halve(limit);
            seen.push(limit);
        }
        assert_eq!(seen, [2500, 1250, 625, 312, 156, 78, 39, 19, 9, 4, 2, 1]);
        assert_eq!(halve(1), 1);
        assert_eq!(halve(0), 1);
    }

    #[test]
    fn a_page_may_grow_back_only_far_below_the_budget() {
        let budget = BodyBudget::from_bytes(1000);
        assert!(budget.may_grow(250));
        assert!(!budget.may_grow(251));
    }

    #[test]
    fn the_first_activitys_id_is_read_from_the_head_of_a_cut_body() {
        let head = br#"{"data":[{"id":"activity_01Xy","created_at":"2026-"#;
        assert_eq!(first_activity_id(head).as_deref(), Some("activity_01Xy"));
        let spaced = b"{ \"data\" : [ { \"id\" : \"activity_2\", ";
        assert_eq!(first_activity_id(spaced).as_deref(), Some("activity_2"));
        // Another field first, an id not yet whole, or no data array first: unknown.
        assert_eq!(first_activity_id(br#"{"data":[{"type":"x","id":"a"}"#), None);
        assert_eq!(first_activity_id(br#"{"data":[{"id":"activity_01"#), None);
        assert_eq!(first_activity_id(br#"{"has_more":true,"data":[{"id":"a"}"#), None);
        assert_eq!(first_activity_id(b""), None);
    }
}
