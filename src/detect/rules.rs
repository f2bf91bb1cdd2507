//! Rule loading: Sigma YAML files (shipped packs and the user's own) into one [`RuleSet`], the
//! compiled detection engine plus the correlations over it.
//!
//! Parsing and compiling are rsigma's (`rsigma-parser`, `rsigma-eval`); this module adds what the
//! detector needs around them: every rule has an `id` (the `alert_id` is derived from it), ids are
//! unique across the set, correlations name rules that exist, and a file that fails any of this is
//! rejected whole with a [`RuleError`] naming it, while every other file still loads. A rule that
//! a correlation references (with `generate: false`, Sigma's default), in its own file or another,
//! feeds that correlation only and raises no alert of its own.

use std::collections::{BTreeSet, HashMap};

use super::prefilter::{self, TypeIndex, Types};
use rsigma_eval::{CompiledRule, Engine, EvalError, compile_rule};
use rsigma_parser::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType,
    Level, SigmaParserError, parse_sigma_yaml,
};

/// The pack name of rules loaded from `CUSTOM_RULES_PREFIX` or `--rules`.
pub const CUSTOM_PACK: &str = "custom";

/// Longest correlation window accepted: correlation state lives this long at most.
pub const MAX_TIMESPAN_SECONDS: u64 = 7 * 24 * 3600;

/// One rule file: its pack, its name (shown in errors) and its YAML text.
#[derive(Debug, Clone, Copy)]
pub struct RuleSource<'a> {
    pub pack: &'a str,
    pub file: &'a str,
    pub yaml: &'a str,
}

/// Why one rule file was rejected. The file is always named.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{file}: not a Sigma rule file")]
    Parse {
        file: String,
        #[source]
        source: SigmaParserError,
    },
    #[error("{file}: {detail}")]
    Document { file: String, detail: String },
    #[error("{file}: rule {title:?} does not compile")]
    Compile {
        file: String,
        title: String,
        #[source]
        source: EvalError,
    },
    #[error("{file}: rule {title:?} has no id (the alert id is derived from it)")]
    MissingId { file: String, title: String },
    #[error("{file}: rule id {id} is already used by {other}")]
    DuplicateId { file: String, id: String, other: String },
    #[error("{file}: correlation {id} references {reference:?}, which is no loaded rule")]
    UnknownReference { file: String, id: String, reference: String },
    #[error("{file}: correlation {id}: {what} is not supported by this detector")]
    Unsupported { file: String, id: String, what: String },
    #[error("{file}: no rule in the file")]
    Empty { file: String },
}

impl RuleError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            RuleError::Parse { file, .. }
            | RuleError::Document { file, .. }
            | RuleError::Compile { file, .. }
            | RuleError::MissingId { file, .. }
            | RuleError::DuplicateId { file, .. }
            | RuleError::UnknownReference { file, .. }
            | RuleError::Unsupported { file, .. }
            | RuleError::Empty { file } => file,
        }
    }
}

/// What an alert says about the rule that raised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub level: &'static str,
    pub pack: String,
    pub tags: Vec<String>,
    /// The file the rule came from (its stem names the rule's test file).
    pub file: String,
}

/// How a correlation counts.
#[derive(Debug, Clone, PartialEq)]
pub enum CorrelationKind {
    EventCount,
    /// Distinct values of this field (a dotted path).
    ValueCount {
        field: String,
    },
    /// Every member rule (or the boolean expression over member names) within the window.
    Temporal {
        condition: Option<ConditionExpr>,
    },
}

/// A correlation rule, resolved against the loaded detection rules.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub meta: RuleMeta,
    pub kind: CorrelationKind,
    /// Ids of the member detection rules, in the rule's order.
    pub members: Vec<String>,
    /// The names the rule used for its members (for a temporal expression).
    pub member_names: Vec<Vec<String>>,
    pub group_by: Vec<String>,
    pub timespan_seconds: i64,
    pub predicates: Vec<(ConditionOperator, u64)>,
}

impl Correlation {
    /// Whether `count` satisfies every threshold predicate (none: at least one).
    pub fn threshold_met(&self, count: u64) -> bool {
        if self.predicates.is_empty() {
            return count >= 1;
        }
        self.predicates.iter().all(|(op, n)| match op {
            ConditionOperator::Lt => count < *n,
            ConditionOperator::Lte => count <= *n,
            ConditionOperator::Gt => count > *n,
            ConditionOperator::Gte => count >= *n,
            ConditionOperator::Eq => count == *n,
            ConditionOperator::Neq => count != *n,
        })
    }
}

/// Where a detection rule's match goes: its own alert, and the correlations it feeds.
#[derive(Debug, Clone, Default)]
pub struct RuleRoute {
    pub meta: Option<usize>,
    pub alerts: bool,
    /// (correlation index, member index).
    pub feeds: Vec<(usize, usize)>,
}

/// Every loaded rule: the compiled engine, the alert metadata and the correlations.
pub struct RuleSet {
    pub(crate) engine: Engine,
    pub(crate) metas: Vec<RuleMeta>,
    pub(crate) routes: HashMap<String, RuleRoute>,
    pub(crate) correlations: Vec<Correlation>,
    /// The activity types some detection rule can match, as the scan looks them up. See
    /// [`prefilter`].
    pub(crate) types: TypeIndex,
    /// The files of the rules that may match an activity of any type: while there is one, every
    /// line is evaluated in full.
    pub(crate) unbound: Vec<String>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.metas.len())
            .field("correlations", &self.correlations.len())
            .finish()
    }
}

/// One file that parsed and compiled, before the correlations are resolved.
struct Accepted {
    file: String,
    pack: String,
    /// Each rule compiled, with its name and the types it can match.
    rules: Vec<(CompiledRule, Option<String>, Option<Types>)>,
    correlations: Vec<CorrelationRule>,
}

impl RuleSet {
    /// Loads `sources` in order; a file with any error is skipped whole and reported.
    pub fn load<'a>(
        sources: impl IntoIterator<Item = RuleSource<'a>>,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut accepted = Vec::new();
        for source in sources {
            match accept(source, &ids) {
                Ok(file) => {
                    for (rule, _, _) in &file.rules {
                        if let Some(id) = &rule.id {
                            ids.insert(id.clone(), file.file.clone());
                        }
                    }
                    for c in &file.correlations {
                        if let Some(id) = &c.id {
                            ids.insert(id.clone(), file.file.clone());
                        }
                    }
                    accepted.push(file);
                }
                Err(e) => errors.push(e),
            }
        }
        let mut set = RuleSet {
            engine: Engine::new(),
            metas: Vec::new(),
            routes: HashMap::new(),
            correlations: Vec::new(),
            types: TypeIndex::default(),
            unbound: Vec::new(),
        };
        let mut all_types = Types::new();
        // Names resolve to ids across the whole set (a correlation may use a rule of another file).
        let mut by_name: HashMap<String, String> = HashMap::new();
        let mut rule_ids = BTreeSet::new();
        for file in &accepted {
            for (rule, name, _) in &file.rules {
                if let Some(id) = &rule.id {
                    rule_ids.insert(id.clone());
                    if let Some(name) = name {
                        by_name.insert(name.clone(), id.clone());
                    }
                }
            }
        }
        // Correlations first: a member of one with `generate: false` (Sigma's default) raises no
        // alert of its own, whichever file it is in.
        let mut files = Vec::new();
        let mut silenced = BTreeSet::new();
        for file in accepted {
            let resolved: Result<Vec<_>, _> = file
                .correlations
                .iter()
                .map(|c| resolve(c, &file.file, &file.pack, &rule_ids, &by_name))
                .collect();
            match resolved {
                Ok(resolved) => {
                    for (correlation, generate) in &resolved {
                        if !generate {
                            silenced.extend(correlation.members.iter().cloned());
                        }
                    }
                    files.push((file, resolved));
                }
                Err(e) => errors.push(e),
            }
        }
        let mut compiled = Vec::new();
        for (file, resolved) in files {
            for (rule, _, types) in file.rules {
                let Some(id) = rule.id.clone() else { continue };
                match types {
                    Some(types) => all_types.extend(types),
                    None => set.unbound.push(file.file.clone()),
                }
                let meta = RuleMeta {
                    id: id.clone(),
                    title: rule.title.clone(),
                    level: level_name(rule.level),
                    pack: file.pack.clone(),
                    tags: rule.tags.clone(),
                    file: file.file.clone(),
                };
                set.metas.push(meta);
                let route = set.routes.entry(id.clone()).or_default();
                route.meta = Some(set.metas.len() - 1);
                route.alerts = !silenced.contains(&id);
                compiled.push(rule);
            }
            for (correlation, _) in resolved {
                let index = set.correlations.len();
                for (member, id) in correlation.members.iter().enumerate() {
                    set.routes.entry(id.clone()).or_default().feeds.push((index, member));
                }
                set.correlations.push(correlation);
            }
        }
        set.engine.extend_compiled_rules(compiled);
        set.types = TypeIndex::new(&all_types);
        (set, errors)
    }

    /// Number of detection rules plus correlations.
    pub fn len(&self) -> usize {
        self.metas.len() + self.correlations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rule's metadata: detection rules, then correlations.
    pub fn metas(&self) -> impl Iterator<Item = &RuleMeta> {
        self.metas.iter().chain(self.correlations.iter().map(|c| &c.meta))
    }

    /// The detection rules that raise no alert of their own (they only feed a correlation).
    pub fn silent(&self) -> impl Iterator<Item = &RuleMeta> {
        self.metas.iter().filter(|m| self.routes.get(&m.id).is_some_and(|r| !r.alerts))
    }

    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// Whether a line is worth a full evaluation: false only when its top-level `type` is one
    /// that no loaded rule can match. A line that is not JSON, or has no string `type`, is
    /// always worth it (it is then reported, or evaluated in full).
    pub fn may_match(&self, line: &[u8]) -> bool {
        !self.unbound.is_empty() || prefilter::may_match(&self.types, line)
    }

    /// The activity types the loaded rules can match, or `None` when some rule may match any.
    pub fn types(&self) -> Option<&TypeIndex> {
        self.unbound.is_empty().then_some(&self.types)
    }

    /// The files of the rules that may match an activity of any type (see [`prefilter`]).
    pub fn unbound_rules(&self) -> &[String] {
        &self.unbound
    }
}

/// Sigma's level name; a rule without one is informational.
fn level_name(level: Option<Level>) -> &'static str {
    level.map_or("informational", |l| l.as_str())
}

fn accept(source: RuleSource<'_>, ids: &HashMap<String, String>) -> Result<Accepted, RuleError> {
    let file = source.file.to_owned();
    let collection = parse_sigma_yaml(source.yaml)
        .map_err(|source| RuleError::Parse { file: file.clone(), source })?;
    if let Some(detail) = collection.errors.first() {
        return Err(RuleError::Document { file, detail: detail.clone() });
    }
    if !collection.filters.is_empty() {
        return Err(RuleError::Document {
            file,
            detail: "filter documents are not supported".to_owned(),
        });
    }
    if collection.rules.is_empty() && collection.correlations.is_empty() {
        return Err(RuleError::Empty { file });
    }
    let mut seen = BTreeSet::new();
    let mut check_id = |id: &Option<String>, title: &str| match id {
        None => Err(RuleError::MissingId { file: file.clone(), title: title.to_owned() }),
        Some(id) => {
            if let Some(other) = ids.get(id) {
                return Err(RuleError::DuplicateId {
                    file: file.clone(),
                    id: id.clone(),
                    other: other.clone(),
                });
            }
            if !seen.insert(id.clone()) {
                return Err(RuleError::DuplicateId {
                    file: file.clone(),
                    id: id.clone(),
                    other: file.clone(),
                });
            }
            Ok(())
        }
    };
    for rule in &collection.rules {
        check_id(&rule.id, &rule.title)?;
    }
    for c in &collection.correlations {
        check_id(&c.id, &c.title)?;
    }
    let mut rules = Vec::new();
    for rule in &collection.rules {
        let compiled = compile_rule(rule).map_err(|source| RuleError::Compile {
            file: file.clone(),
            title: rule.title.clone(),
            source,
        })?;
        rules.push((compiled, rule.name.clone(), prefilter::rule_types(rule)));
    }
    Ok(Accepted {
        file,
        pack: source.pack.to_owned(),
        rules,
        correlations: collection.correlations,
    })
}

/// A correlation with its member references turned into rule ids; the flag is `generate`.
fn resolve(
    c: &CorrelationRule,
    file: &str,
    pack: &str,
    rule_ids: &BTreeSet<String>,
    by_name: &HashMap<String, String>,
) -> Result<(Correlation, bool), RuleError> {
    let id = c.id.clone().unwrap_or_default();
    let unsupported =
        |what: String| RuleError::Unsupported { file: file.to_owned(), id: id.clone(), what };
    let mut members = Vec::new();
    let mut member_names: Vec<Vec<String>> = Vec::new();
    for reference in &c.rules {
        let target = by_name
            .get(reference)
            .cloned()
            .or_else(|| rule_ids.contains(reference.as_str()).then(|| reference.clone()));
        let Some(target) = target else {
            return Err(RuleError::UnknownReference {
                file: file.to_owned(),
                id: id.clone(),
                reference: reference.clone(),
            });
        };
        match members.iter().position(|m| m == &target) {
            Some(i) => member_names[i].push(reference.clone()),
            None => {
                members.push(target);
                member_names.push(vec![reference.clone()]);
            }
        }
    }
    if c.timespan.seconds == 0 || c.timespan.seconds > MAX_TIMESPAN_SECONDS {
        return Err(unsupported(format!("timespan {} (1 second to 7 days)", c.timespan.original)));
    }
    let (predicates, field, expression) = match &c.condition {
        CorrelationCondition::Threshold { predicates, field, .. } => {
            (predicates.clone(), field.clone(), None)
        }
        CorrelationCondition::Extended(expr) => (Vec::new(), None, Some(expr.clone())),
    };
    let kind = match c.correlation_type {
        CorrelationType::EventCount => CorrelationKind::EventCount,
        CorrelationType::ValueCount => match field.as_deref() {
            Some([one]) => CorrelationKind::ValueCount { field: one.clone() },
            _ => return Err(unsupported("value_count without exactly one field".to_owned())),
        },
        CorrelationType::Temporal => CorrelationKind::Temporal { condition: expression },
        other => return Err(unsupported(format!("correlation type {}", other.as_str()))),
    };
    if !matches!(kind, CorrelationKind::Temporal { .. }) && predicates.is_empty() {
        return Err(unsupported("a count correlation without a threshold".to_owned()));
    }
    if !c.aliases.is_empty() {
        return Err(unsupported("field aliases".to_owned()));
    }
    let meta = RuleMeta {
        id: id.clone(),
        title: c.title.clone(),
        level: level_name(c.level),
        pack: pack.to_owned(),
        tags: c.tags.clone(),
        file: file.to_owned(),
    };
    let timespan_seconds = i64::try_from(c.timespan.seconds).unwrap_or(i64::MAX);
    Ok((
        Correlation {
            meta,
            kind,
            members,
            member_names,
            group_by: c.group_by.clone(),
            timespan_seconds,
            predicates,
        },
        c.generate,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: Admin key created
id: 6a1f7e55-1111-4c0e-9d57-000000000001
logsource: {product: anthropic, service: compliance}
detection:
  selection:
    type: admin_api_key_created
  condition: selection
level: high
tags: [attack.persistence]
";

    fn source<'a>(file: &'a str, yaml: &'a str) -> RuleSource<'a> {
        RuleSource { pack: "credentials", file, yaml }
    }

    #[test]
    fn a_valid_rule_loads_with_its_metadata() {
        // GIVEN one rule file WHEN it is loaded
        let (set, errors) = RuleSet::load([source("admin_key.yml", RULE)]);
        // THEN the rule is there with its level, pack, tags and file
        assert!(errors.is_empty(), "{errors:?}");
        let meta: Vec<_> = set.metas().collect();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].level, "high");
        assert_eq!(meta[0].pack, "credentials");
        assert_eq!(meta[0].tags, vec!["attack.persistence".to_owned()]);
        assert_eq!(meta[0].file, "admin_key.yml");
    }

    #[test]
    fn a_bad_file_is_named_and_the_others_still_load() {
        // GIVEN a file that is not YAML, one with an unknown modifier and a good one
        let broken = "title: [unclosed";
        let bad_modifier = RULE
            .replace("type: admin", "type|nosuchmodifier: admin")
            .replace("000000000001", "000000000002");
        let (set, errors) = RuleSet::load([
            source("broken.yml", broken),
            source("modifier.yml", &bad_modifier),
            source("good.yml", RULE),
        ]);
        // THEN both bad files are reported by name and the good rule loads
        let files: Vec<_> = errors.iter().map(RuleError::file).collect();
        assert_eq!(files, vec!["broken.yml", "modifier.yml"]);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_rule_without_id_or_with_a_taken_id_is_refused() {
        // GIVEN a rule without id, and a second file reusing the first's id
        let no_id = RULE.replace("id: 6a1f7e55-1111-4c0e-9d57-000000000001\n", "");
        let (set, errors) =
            RuleSet::load([source("a.yml", RULE), source("b.yml", RULE), source("c.yml", &no_id)]);
        // THEN only the first loads
        assert_eq!(set.len(), 1);
        assert!(matches!(errors[0], RuleError::DuplicateId { ref other, .. } if other == "a.yml"));
        assert!(matches!(errors[1], RuleError::MissingId { .. }));
    }

    #[test]
    fn a_correlation_resolves_its_rule_by_name_and_silences_it() {
        // GIVEN a file with a named base rule and an event_count correlation over it
        let yaml = format!(
            "{RULE}name: admin_key_created\n---\ntitle: Many admin keys
id: 6a1f7e55-1111-4c0e-9d57-0000000000c1
correlation:
  type: event_count
  rules: [admin_key_created]
  group-by: [actor.email_address]
  timespan: 1h
  condition: {{gte: 3}}
level: critical
"
        );
        let (set, errors) = RuleSet::load([source("many.yml", &yaml)]);
        // THEN the correlation is resolved to the rule's id and the base rule raises no alert
        assert!(errors.is_empty(), "{errors:?}");
        let c = &set.correlations()[0];
        assert_eq!(c.members, vec!["6a1f7e55-1111-4c0e-9d57-000000000001".to_owned()]);
        assert_eq!(c.timespan_seconds, 3600);
        assert!(c.threshold_met(3) && !c.threshold_met(2));
        let route = &set.routes["6a1f7e55-1111-4c0e-9d57-000000000001"];
        assert!(!route.alerts);
        assert_eq!(route.feeds, vec![(0, 0)]);
    }

    #[test]
    fn a_correlation_on_an_unknown_rule_is_refused() {
        // GIVEN a correlation that names no loaded rule
        let yaml = "title: Orphan
id: 6a1f7e55-1111-4c0e-9d57-0000000000c2
correlation:
  type: event_count
  rules: [nothing_here]
  timespan: 1h
  condition: {gte: 3}
";
        let (set, errors) = RuleSet::load([source("orphan.yml", yaml)]);
        // THEN the file is reported and nothing loads
        assert!(set.is_empty());
        assert!(
            matches!(errors[0], RuleError::UnknownReference { ref reference, .. } if reference == "nothing_here")
        );
    }
}
