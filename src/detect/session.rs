//! An in-process detection session: objects evaluated one after the other with the correlation
//! state held in memory, so windows span every object of the session. This is `evaluate` (the
//! CLI) and the rule test runner; the Lambda keeps the same state in the state table instead.

use std::collections::HashMap;
use std::io::BufRead;

use super::alert::Alert;
use super::correlation::{GroupState, advance};
use super::evaluate::{EvaluateError, Evaluation};
use super::rules::RuleSet;

/// The rules and the correlation state of one session.
#[derive(Debug)]
pub struct Session<'r> {
    rules: &'r RuleSet,
    states: HashMap<(usize, String), GroupState>,
    /// Activities evaluated so far.
    pub activities: u64,
}

impl<'r> Session<'r> {
    pub fn new(rules: &'r RuleSet) -> Session<'r> {
        Session { rules, states: HashMap::new(), activities: 0 }
    }

    /// Evaluates one object and returns its alerts: detections in line order, then the
    /// correlations that fired, counted with everything the session saw before.
    pub fn evaluate(
        &mut self,
        object_key: &str,
        reader: impl BufRead,
    ) -> Result<Vec<Alert>, EvaluateError> {
        let mut evaluation = Evaluation::default();
        self.rules.evaluate_object(object_key, reader, &mut evaluation)?;
        self.activities += evaluation.activities;
        let mut alerts = evaluation.alerts;
        for ((index, group), pending) in &evaluation.pending {
            let state = self.states.entry((*index, group.clone())).or_default();
            let (next, fired) = advance(&self.rules.correlations[*index], state, &pending.entries);
            *state = next;
            alerts.extend(fired.iter().map(|f| self.rules.correlation_alert(*index, pending, f)));
        }
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleSource;

    const RULES: &str = include_str!("../../tests/fixtures/rules/sample.yml");

    fn failed(id: &str, second: u32) -> String {
        format!(
            r#"{{"id":"{id}","created_at":"2026-03-07T09:41:{second:02}Z","type":"magic_link_login_failed","actor":{{"type":"user_actor","email_address":"a@x"}}}}
"#
        )
    }

    #[test]
    fn a_correlation_split_across_objects_fires_once_with_both_keys() {
        // GIVEN the fixture rules and three failed sign-ins for one email, over two objects
        let (rules, errors) =
            RuleSet::load([RuleSource { pack: "custom", file: "sample.yml", yaml: RULES }]);
        assert!(errors.is_empty(), "{errors:?}");
        let mut session = Session::new(&rules);
        let first = format!("{}{}", failed("f1", 1), failed("f2", 2));
        // WHEN the objects are evaluated in turn, and the second one again
        let a = session.evaluate("k1", first.as_bytes()).unwrap();
        let b = session.evaluate("k2", failed("f3", 3).as_bytes()).unwrap();
        let again = session.evaluate("k2", failed("f3", 3).as_bytes()).unwrap();
        // THEN one alert, on the second object, naming both objects and the group
        assert!(a.is_empty() && again.is_empty());
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].activity_ids, ["f1", "f2", "f3"]);
        assert_eq!(b[0].object_keys, ["k1", "k2"]);
        assert_eq!(b[0].count, 3);
        assert_eq!(b[0].first_seen, "2026-03-07T09:41:01Z");
        assert_eq!(b[0].last_seen, "2026-03-07T09:41:03Z");
        let group = b[0].group.as_ref().unwrap();
        assert_eq!(group["actor.email_address"], "a@x");
        // AND it carries the activity of its own object only (the earlier ones are in k1)
        assert_eq!(b[0].activities.len(), 1);
    }
}
