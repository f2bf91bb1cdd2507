//! Hand-picked activities (`Simulator::seed`): served like generated ones, with the fields asked.

use compliance_sim::{Seed, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_seeded_activity_is_served_with_its_type_instant_and_fields() {
    // GIVEN a simulator with one seeded SSO toggle to off by a known actor
    let f = fixture().await;
    let at: jiff::Timestamp = "2026-04-01T10:00:00.250Z".parse().unwrap();
    let id = f
        .sim
        .seed(
            &Seed::new("org_sso_toggled", at)
                .with("is_enabled", false)
                .with("actor.email_address", "mallory@example.com"),
        )
        .unwrap();
    // WHEN April is read
    let page = feed(&f.server, APRIL).await;
    // THEN it is there, a realistic activity with the seed's values
    let body: Value = page.json();
    let served: Vec<&Value> = body["data"].as_array().unwrap().iter().collect();
    assert_eq!(served.len(), 1, "{}", page.text());
    let a = served[0];
    assert_eq!(a["id"], json!(id));
    assert_eq!(a["type"], "org_sso_toggled");
    assert_eq!(a["created_at"], "2026-04-01T10:00:00.250Z");
    assert_eq!(a["is_enabled"], false);
    assert_eq!(a["actor"]["email_address"], "mallory@example.com");
    assert!(a["actor"]["type"].is_string(), "the generated actor is kept: {a}");
    assert!(
        a["organization_id"].is_string(),
        "an organization-bound type has an organization: {a}"
    );
}

#[test]
fn a_seed_that_would_change_the_activity_id_is_refused() {
    // GIVEN a seed setting `id`
    let sim = Simulator::new(SimConfig::default());
    let seed = Seed::new("admin_api_key_created", "2026-04-01T00:00:00Z".parse().unwrap())
        .with("id", "activity_mine");
    // WHEN it is seeded THEN it is refused and nothing is added
    assert!(sim.seed(&seed).is_err());
    assert!(sim.activities().is_empty());
}

#[test]
fn a_hidden_seed_waits_to_be_revealed() {
    // GIVEN a hidden seeded activity
    let sim = Simulator::new(SimConfig::default());
    let mut seed = Seed::new("admin_api_key_created", "2026-04-01T00:00:00Z".parse().unwrap());
    seed.hidden = true;
    let id = sim.seed(&seed).unwrap();
    // WHEN it is listed THEN it is held, invisible, until revealed
    assert!(!sim.activities()[0].visible);
    assert_eq!(sim.reveal_ids(&[id]), 1);
    assert!(sim.activities()[0].visible);
}
