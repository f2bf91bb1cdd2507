//! Which lines are worth a full evaluation: the `type` values the loaded rules can match.
//!
//! Almost every rule names the activity types it is about (`type: org_sso_disabled`), or the kind
//! of actor (`actor.type: anthropic_actor`). Parsing a line into a tree for the engine costs far
//! more than finding its `…type` keys, and most lines of an object are of types no rule is about
//! (chats, files, projects), so the detector scans each line for them first and builds the tree
//! only for a line where one of them holds a value some rule requires.
//!
//! The analysis is conservative: a rule is bound to a set of values only when every way its
//! condition can be true requires a field named `type` (at the top or nested: `actor.type`) to
//! equal one of them exactly (plain strings, no wildcard, no modifier). Anything it cannot prove
//! (a keyword search, `not`, a wildcard, a modifier, an array block) makes the rule match any
//! line, and one such rule turns the filter off: every line is then evaluated in full.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use memchr::memmem::Finder;
use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Quantifier, SelectorPattern, SigmaRule, SigmaValue,
};
use rustc_hash::FxHashSet;

/// Values, lowercased (Sigma's plain strings match without regard to case).
pub type Types = BTreeSet<String>;

/// What a condition requires, as fields that must each equal one of their values, all at once;
/// empty when nothing is proven. The field `*` stands for several fields' values united (one of
/// them must hold), which is never intersected with another.
type Bound = Vec<(String, Types)>;

const MIXED: &str = "*";

/// The values `rule` needs some `type` field to hold, or `None` when it may match any line.
pub fn rule_types(rule: &SigmaRule) -> Option<Types> {
    let named = &rule.detection.named;
    // Several conditions are alternatives: the rule matches when any of them does.
    let bound = any_of(rule.detection.conditions.iter().map(|c| condition_bound(c, named)));
    best(bound).map(|(_, types)| types)
}

/// [`Types`] laid out for the scan, which looks a value up for every key named `type` of every
/// line: one hash of its bytes (FxHash: the values are a few dozen bytes the rules wrote, not
/// input an attacker chooses the keys of) and one comparison, where a sorted set compares it with
/// a string at each level of the tree.
#[derive(Debug, Clone, Default)]
pub struct TypeIndex {
    values: FxHashSet<Box<[u8]>>,
}

impl TypeIndex {
    pub fn new(types: &Types) -> TypeIndex {
        TypeIndex { values: types.iter().map(|t| t.as_bytes().into()).collect() }
    }

    /// Whether `value` is one of the types, exactly as they are held (lowercase).
    pub fn contains(&self, value: &str) -> bool {
        self.values.contains(value.as_bytes())
    }

    /// Whether `value` (ASCII, as written in a line) is one of the types, whatever its case.
    pub fn admits(&self, value: &[u8]) -> bool {
        if value.iter().any(u8::is_ascii_uppercase) {
            self.values.contains(value.to_ascii_lowercase().as_slice())
        } else {
            self.values.contains(value)
        }
    }
}

/// Whether a line is worth a full evaluation by rules bound to `types`: false only when it is
/// certain that no field named `type`, at any depth, holds one of them.
///
/// No parse: in JSON every `"` inside a string is escaped, so the bytes `type"` (a quote after a
/// letter is never escaped) always close a string. Followed by `:"` they close a key ending in
/// `type` whose value is a string, read up to the next quote; followed by `,`, `}` or `]`, a
/// value that ends in "type". Every key named `type` at any depth is among the first kind. The
/// line is a candidate when one of those values is in `types`, and whenever the scan is unsure:
/// a key ending in `type` followed by anything else (whitespace, a number), a value with an
/// escape or a character beyond ASCII in it, an escaped printable ASCII character anywhere (`"typ\u0065"` could be the key),
/// or no such key at all (the full parse then reports a line that is not an activity).
pub fn may_match(types: &TypeIndex, line: &[u8]) -> bool {
    let mut seen = false;
    for at in TYPE_CLOSE.find_iter(line) {
        let after = &line[at + TYPE_CLOSE.needle().len()..];
        match after.first() {
            Some(b',' | b'}' | b']') => continue,
            Some(b':') => {}
            _ => return true,
        }
        let Some(value) = after.strip_prefix(b":\"") else { return true };
        let Some(end) = memchr::memchr(b'"', value) else { return true };
        let value = &value[..end];
        // Beyond ASCII, a case-insensitive match could fold a character into an ASCII one
        // (the Kelvin sign into `k`): such a value is left to the rules.
        if !value.is_ascii() || memchr::memchr(b'\\', value).is_some() || types.admits(value) {
            return true;
        }
        seen = true;
    }
    !seen || escapes_printable_ascii(line)
}

/// The bytes that close a string ending in "type".
static TYPE_CLOSE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"type\""));
static UNICODE_ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u00"));

/// Whether the line writes a printable ASCII character (U+0020 to U+007F) as `\u00XX`, which no
/// ordinary serializer does and which could spell a key.
fn escapes_printable_ascii(line: &[u8]) -> bool {
    UNICODE_ESCAPE
        .find_iter(line)
        .any(|at| line.get(at + 4).is_some_and(|d| (b'2'..=b'7').contains(d)))
}

fn condition_bound(expr: &ConditionExpr, named: &HashMap<String, Detection>) -> Bound {
    match expr {
        ConditionExpr::Identifier(name) => named.get(name).map(detection_bound).unwrap_or_default(),
        ConditionExpr::And(parts) => all_of(parts.iter().map(|p| condition_bound(p, named))),
        ConditionExpr::Or(parts) => any_of(parts.iter().map(|p| condition_bound(p, named))),
        ConditionExpr::Not(_) => Bound::new(),
        ConditionExpr::Selector { quantifier, pattern } => {
            // `them` may or may not include names starting with `_` (implementations differ):
            // an alternative counts them in, a conjunction leaves them out, the wider either way.
            let all = matches!(quantifier, Quantifier::All);
            let mut chosen: Vec<&str> = named
                .keys()
                .filter(|name| match pattern {
                    SelectorPattern::Them => !(all && name.starts_with('_')),
                    SelectorPattern::Pattern(p) => glob(p, name),
                })
                .map(String::as_str)
                .collect();
            chosen.sort_unstable();
            if chosen.is_empty() {
                return Bound::new();
            }
            let each = chosen.iter().map(|name| detection_bound(&named[*name]));
            match quantifier {
                Quantifier::All => all_of(each),
                // N of M (N ≥ 1) needs at least one of them.
                Quantifier::Any => any_of(each),
                Quantifier::Count(n) if *n >= 1 => any_of(each),
                Quantifier::Count(_) => Bound::new(),
            }
        }
    }
}

fn detection_bound(detection: &Detection) -> Bound {
    match detection {
        Detection::AllOf(items) => all_of(items.iter().map(item_bound)),
        Detection::AnyOf(alternatives) => any_of(alternatives.iter().map(detection_bound)),
        Detection::And(parts) => all_of(parts.iter().map(detection_bound)),
        Detection::Keywords(_) | Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {
            Bound::new()
        }
    }
}

/// `type: value`, `actor.type: [values]`: a field named `type`, plain strings, no modifier.
fn item_bound(item: &DetectionItem) -> Bound {
    let Some(field) = item.field.name.as_deref() else { return Bound::new() };
    if !(field == "type" || field.ends_with(".type"))
        || !item.field.modifiers.is_empty()
        || item.values.is_empty()
    {
        return Bound::new();
    }
    let values: Option<Types> = item
        .values
        .iter()
        .map(|v| match v {
            SigmaValue::String(s) => s.as_plain().map(|p| p.to_lowercase()),
            _ => None,
        })
        .collect();
    values.map(|v| vec![(field.to_owned(), v)]).unwrap_or_default()
}

/// Conditions that must all hold: every requirement of each; two on the same field intersect.
fn all_of(parts: impl Iterator<Item = Bound>) -> Bound {
    let mut out = Bound::new();
    for (field, types) in parts.flatten() {
        match out.iter_mut().find(|(f, _)| *f == field && f != MIXED) {
            Some((_, have)) => *have = have.intersection(&types).cloned().collect(),
            None => out.push((field, types)),
        }
    }
    out
}

/// Alternatives: each must be bound; one requirement of each (see [`best`]), their values united.
fn any_of(alternatives: impl Iterator<Item = Bound>) -> Bound {
    let mut fields = BTreeSet::new();
    let mut values = Types::new();
    let mut any = false;
    for alternative in alternatives {
        let Some((field, types)) = best(alternative) else { return Bound::new() };
        fields.insert(field);
        values.extend(types);
        any = true;
    }
    if !any {
        return Bound::new();
    }
    let field = match fields.len() {
        1 => fields.pop_first().unwrap_or_else(|| MIXED.to_owned()),
        _ => MIXED.to_owned(),
    };
    vec![(field, values)]
}

/// The requirement that lets the fewest lines through: the top-level `type` if there is one,
/// else the fewest values.
fn best(bound: Bound) -> Option<(String, Types)> {
    bound.into_iter().min_by_key(|(field, types)| (field != "type", types.len()))
}

/// Sigma's selector pattern: `*` for any run of characters, otherwise exact.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => name.strip_prefix(head).is_some_and(|rest| {
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }),
    }
}

#[cfg(test)]
mod tests {
    use rsigma_parser::parse_sigma_yaml;

    use super::*;

    fn types_of(detection: &str) -> Option<Vec<String>> {
        let yaml = format!(
            "title: t\nid: 2f7d1a9e-3c4b-4d5e-8f60-718293a4b5c6\nlogsource:\n  product: anthropic\ndetection:\n{detection}\n"
        );
        let collection = parse_sigma_yaml(&yaml).unwrap();
        assert!(collection.errors.is_empty() && collection.rules.len() == 1, "{detection}");
        rule_types(&collection.rules[0]).map(|t| t.into_iter().collect())
    }

    fn set(types: &[&str]) -> Option<Vec<String>> {
        Some(types.iter().map(|t| t.to_string()).collect())
    }

    #[test]
    fn a_selection_on_type_binds_the_rule_to_its_values_lowercased() {
        let d = "  sel:\n    type:\n      - Admin_API_Key_Created\n      - admin_api_key_deleted\n    actor.type: user_actor\n  condition: sel";
        assert_eq!(types_of(d), set(&["admin_api_key_created", "admin_api_key_deleted"]));
    }

    #[test]
    fn and_intersects_or_unites_and_a_filter_does_not_widen() {
        let d = "  a:\n    type: [x, y]\n  b:\n    type: [y, z]\n  f:\n    actor.email_address: bot@x\n  condition: a and b and not f";
        assert_eq!(types_of(d), set(&["y"]));
        let d = "  a:\n    type: x\n  b:\n    type: z\n  condition: a or b";
        assert_eq!(types_of(d), set(&["x", "z"]));
        let d = "  sel_a:\n    type: x\n  sel_b:\n    type: z\n  condition: 1 of sel_*";
        assert_eq!(types_of(d), set(&["x", "z"]));
        let d = "  sel:\n    - type: x\n      a: 1\n    - type: z\n  condition: sel";
        assert_eq!(types_of(d), set(&["x", "z"]));
    }

    #[test]
    fn anything_unproven_matches_every_type() {
        for d in [
            // no type at all
            "  sel:\n    actor.email_address: a@x\n  condition: sel",
            // a wildcard, a modifier
            "  sel:\n    type: org_*\n  condition: sel",
            "  sel:\n    type|startswith: org_\n  condition: sel",
            // an alternative without a type
            "  a:\n    type: x\n  b:\n    is_enabled: false\n  condition: a or b",
            // a negation
            "  a:\n    type: x\n  condition: not a",
            // keywords
            "  kw:\n    - secret\n  condition: kw",
            // a selector that matches nothing
            "  a:\n    type: x\n  condition: 1 of nothing_*",
        ] {
            assert_eq!(types_of(d), None, "{d}");
        }
    }

    #[test]
    fn a_nested_type_field_binds_too_and_different_fields_never_intersect() {
        // the Anthropic-actor rule: any type but a few, by one kind of actor
        let d = "  sel:\n    actor.type: anthropic_actor\n  expected:\n    type: [anthropic_access]\n  condition: sel and not expected";
        assert_eq!(types_of(d), set(&["anthropic_actor"]));
        // both fields required: the top-level type is the narrower choice
        let d = "  sel:\n    type: x\n    actor.type: user_actor\n  condition: sel";
        assert_eq!(types_of(d), set(&["x"]));
        // either field: both fields' values
        let d = "  a:\n    type: x\n  b:\n    actor.type: y\n  condition: a or b";
        assert_eq!(types_of(d), set(&["x", "y"]));
        // a mix is not intersected with a field of its own
        let d = "  a:\n    type: x\n  b:\n    actor.type: y\n  c:\n    type: [x, z]\n  condition: (a or b) and c";
        assert_eq!(types_of(d), set(&["x", "z"]));
        let d = "  a:\n    type: x\n  b:\n    actor.type: y\n  c:\n    actor.type: w\n  condition: (a or b) and c";
        assert_eq!(types_of(d), set(&["w"]));
    }

    #[test]
    fn the_scan_is_sure_only_of_lines_no_rule_can_match() {
        let types = TypeIndex::new(&Types::from([
            "org_sso_disabled".to_owned(),
            "chat_snapshot".to_owned(),
            "anthropic_actor".to_owned(),
        ]));
        // (line, whether a rule bound to `types` may match it)
        let cases: [(&[u8], bool); 18] = [
            (br#"{"actor":{"type":"user_actor"},"type":"org_sso_disabled"}"#, true),
            (br#"{"type":"ORG_SSO_DISABLED","actor":{"type":"user_actor"}}"#, true),
            (br#"{"actor":{"type":"user_actor"},"type":"claude_chat_created"}"#, false),
            // a nested value is as good as the top-level one
            (br#"{"type":"claude_chat_created","actor":{"type":"Anthropic_Actor"}}"#, true),
            (br#"{"type":"claude_chat_created","x":[{"type":"chat_snapshot"}]}"#, true),
            // escapes elsewhere, a value that ends in "type", a key that ends in it: still sure
            (br#"{"type":"claude_chat_created","t":"say \"type\": \u00e9\\"}"#, false),
            (br#"{"k":"type","file_type":"pdf","type":"claude_chat_created"}"#, false),
            // whitespace, a number, an escape in a value, an escaped letter: unsure
            (br#"{"type" : "claude_chat_created"}"#, true),
            (br#"{"type":5}"#, true),
            (br#"{"type":"claude_chat_\u0063reated"}"#, true),
            (br#"{"type":"claude_chat_created","k":"\u0074ype"}"#, true),
            (br#"{"typ\u0065":"org_sso_disabled","type":"claude_chat_created"}"#, true),
            // beyond ASCII: unsure (a case fold may map a character onto an ASCII letter, as
            // it maps K, the Kelvin sign, onto k); so is a value that is not UTF-8
            ("{\"type\":\"chat_snapshot\u{212a}\"}".as_bytes(), true),
            (b"{\"type\":\"chat_\xff\"}", true),
            // no type, or not JSON: evaluated in full (and reported there)
            (br#"{"id":"a"}"#, true),
            (b"{\"id\":", true),
            (b"{\"type\":\"claude_chat_created", true),
            (b"", true),
        ];
        for (line, expected) in cases {
            assert_eq!(may_match(&types, line), expected, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn selector_patterns_are_globs() {
        assert!(glob("sel_*", "sel_a"));
        assert!(glob("*_b", "sel_b"));
        assert!(!glob("sel_*", "filter"));
        assert!(glob("sel", "sel"));
    }
}
