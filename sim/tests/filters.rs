//! Filters and time bounds, each alone and with the others.

use std::collections::HashSet;

use compliance_sim::SimActivity;

use crate::support::*;

fn raw_field(activity: &SimActivity, pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(&activity.raw).unwrap();
    value.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned)
}

/// The ids of April activities satisfying `keep`, newest first (the default order).
fn expected(f: &Fixture, keep: impl Fn(&SimActivity) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = f
        .sim
        .activities()
        .into_iter()
        .filter(|a| a.visible && a.created_at < may_first() && keep(a))
        .map(|a| a.id)
        .collect();
    ids.reverse();
    ids
}

async fn served(f: &Fixture, query: &str) -> Vec<String> {
    let page = feed(&f.server, &format!("limit=5000&{APRIL}&{query}")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    page.ids()
}

async fn seeded() -> Fixture {
    let f = fixture().await;
    f.sim.generate(&april_spec(600, false));
    f
}

#[tokio::test]
async fn organization_ids_match_the_org_id_and_exclude_organization_less_records() {
    // GIVEN generated data with three organizations and some organization-less records
    let f = seeded().await;
    let org = f.sim.activities().iter().find_map(|a| a.organization_id.clone()).unwrap();
    // WHEN filtering by one org id
    let got = served(&f, &format!("organization_ids[]={org}")).await;
    // THEN exactly that organization's records are served
    assert_eq!(got, expected(&f, |a| a.organization_id.as_deref() == Some(org.as_str())));
    assert!(!got.is_empty());
}

#[tokio::test]
async fn organization_ids_also_match_the_organization_uuid() {
    // GIVEN an organization's UUID
    let f = seeded().await;
    let sample = f.sim.activities().into_iter().find(|a| a.organization_id.is_some()).unwrap();
    let uuid = raw_field(&sample, "/organization_uuid").unwrap();
    // WHEN filtering by the UUID
    let got = served(&f, &format!("organization_ids[]={uuid}")).await;
    // THEN the same records as by its org id
    assert_eq!(got, expected(&f, |a| a.organization_id == sample.organization_id));
}

#[tokio::test]
async fn several_organization_ids_are_a_union() {
    let f = seeded().await;
    let orgs: Vec<String> = f
        .sim
        .activities()
        .iter()
        .filter_map(|a| a.organization_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .take(2)
        .collect();
    let got =
        served(&f, &format!("organization_ids[]={}&organization_ids[]={}", orgs[0], orgs[1])).await;
    assert_eq!(got, expected(&f, |a| a.organization_id.as_ref().is_some_and(|o| orgs.contains(o))));
}

#[tokio::test]
async fn activity_types_keep_only_the_named_types() {
    let f = seeded().await;
    let got =
        served(&f, "activity_types[]=claude_chat_viewed&activity_types[]=claude_file_uploaded")
            .await;
    assert_eq!(
        got,
        expected(&f, |a| ["claude_chat_viewed", "claude_file_uploaded"]
            .contains(&a.activity_type.as_str()))
    );
    assert!(!got.is_empty());
}

#[tokio::test]
async fn exclude_activity_types_drop_the_named_types() {
    let f = seeded().await;
    let got = served(&f, "exclude_activity_types[]=claude_chat_viewed").await;
    assert_eq!(got, expected(&f, |a| a.activity_type != "claude_chat_viewed"));
}

#[tokio::test]
async fn percent_encoded_brackets_are_the_same_parameter() {
    let f = seeded().await;
    let literal = served(&f, "activity_types[]=claude_chat_created").await;
    let encoded = served(&f, "activity_types%5B%5D=claude_chat_created").await;
    assert_eq!(literal, encoded);
}

#[tokio::test]
async fn actor_ids_and_the_user_ids_alias_match_the_actor_user_id() {
    // GIVEN a user that acts in the data
    let f = seeded().await;
    let user = f.sim.activities().iter().find_map(|a| raw_field(a, "/actor/user_id")).unwrap();
    let want = expected(&f, |a| raw_field(a, "/actor/user_id").as_deref() == Some(user.as_str()));
    // WHEN filtering by actor_ids[] or by user_ids[]
    // THEN both give that user's records
    assert_eq!(served(&f, &format!("actor_ids[]={user}")).await, want);
    assert_eq!(served(&f, &format!("user_ids[]={user}")).await, want);
    assert!(!want.is_empty());
}

#[tokio::test]
async fn time_bounds_are_inclusive_or_exclusive_as_named() {
    // GIVEN records at exactly 10:00:00, 10:00:01 and 10:00:02
    let f = fixture().await;
    for (id, at) in
        [("activity_t0", "10:00:00"), ("activity_t1", "10:00:01"), ("activity_t2", "10:00:02")]
    {
        f.sim
            .insert_raw(
                &format!(r#"{{"id":"{id}","created_at":"2026-04-03T{at}Z","type":"x"}}"#),
                false,
            )
            .unwrap();
    }
    let at = |hms: &str| format!("2026-04-03T{hms}Z");
    let ids = |q: String| {
        let server = &f.server;
        async move { feed(server, &format!("order=asc&{q}")).await.ids() }
    };
    // THEN gte and lte include the bound, gt and lt exclude it
    assert_eq!(
        ids(format!("created_at.gte={}&created_at.lte={}", at("10:00:01"), at("10:00:02"))).await,
        ["activity_t1", "activity_t2"]
    );
    assert_eq!(
        ids(format!("created_at.gt={}&created_at.lt={}", at("10:00:00"), at("10:00:02"))).await,
        ["activity_t1"]
    );
    assert_eq!(
        ids(format!("created_at.gte={}&created_at.lt={}", at("10:00:00"), at("10:00:01"))).await,
        ["activity_t0"]
    );
    // AND an offset form of the same instant, percent-encoded, is the same bound
    assert_eq!(
        ids("created_at.gte=2026-04-03T12:00:01%2B02:00&created_at.lte=2026-04-03T10:00:01Z"
            .to_owned())
        .await,
        ["activity_t1"]
    );
}

#[tokio::test]
async fn filters_bounds_and_cursors_apply_together() {
    // GIVEN a type filter, an org filter and a narrow window, paged 3 at a time
    let f = seeded().await;
    let org = f.sim.activities().iter().find_map(|a| a.organization_id.clone()).unwrap();
    let window = "created_at.gte=2026-04-02T00:00:00Z&created_at.lt=2026-04-06T00:00:00Z";
    let query = format!(
        "limit=3&{window}&organization_ids[]={org}&exclude_activity_types[]=claude_chat_viewed"
    );
    // WHEN paging
    let (ids, _) = page_through(&f.server, &query).await;
    // THEN every matching record comes once and nothing else
    let from = april(2, "00:00:00");
    let to = april(6, "00:00:00");
    let want = expected(&f, |a| {
        a.created_at >= from
            && a.created_at < to
            && a.organization_id.as_deref() == Some(org.as_str())
            && a.activity_type != "claude_chat_viewed"
    });
    assert_eq!(ids, want);
}
