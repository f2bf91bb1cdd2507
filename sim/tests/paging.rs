//! Paging: every visible record exactly once, in order, in both directions; cursors.

use std::collections::HashSet;

use crate::support::*;

#[tokio::test]
async fn paging_desc_returns_every_visible_record_once_newest_first() {
    // GIVEN 1 050 visible activities and 40 hidden ones
    let f = fixture().await;
    f.sim.generate(&april_spec(1_050, false));
    f.sim.generate(&april_spec(40, true));
    // WHEN paging the default (desc) order 200 at a time
    let (ids, pages) = page_through(&f.server, &format!("limit=200&{APRIL}")).await;
    // THEN every visible record comes exactly once, newest first, over several pages
    let mut expected = visible_april_ids(&f.sim);
    expected.reverse();
    assert_eq!(ids, expected);
    assert_eq!(pages, 6);
}

#[tokio::test]
async fn paging_asc_returns_every_visible_record_once_oldest_first() {
    // GIVEN 777 visible activities
    let f = fixture().await;
    f.sim.generate(&april_spec(777, false));
    // WHEN paging in asc order 100 at a time
    let (ids, pages) = page_through(&f.server, &format!("order=asc&{APRIL}")).await;
    // THEN every record comes once, oldest first
    assert_eq!(ids, visible_april_ids(&f.sim));
    assert_eq!(pages, 8);
}

#[tokio::test]
async fn paging_asc_without_bounds_ends_although_each_request_adds_a_record() {
    // GIVEN 30 activities and no upper bound (each request appends its own access record)
    let f = fixture().await;
    f.sim.generate(&april_spec(30, false));
    // WHEN paging asc 10 at a time
    let (ids, _) = page_through(&f.server, "order=asc&limit=10").await;
    // THEN paging ends, with no id twice, and includes the earlier requests' records
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(ids.len() > 30);
}

#[tokio::test]
async fn before_id_returns_the_adjacent_newer_page_in_desc_order() {
    // GIVEN 50 activities and the first two desc pages of 10
    let f = fixture().await;
    f.sim.generate(&april_spec(50, false));
    let first = feed(&f.server, &format!("limit=10&{APRIL}")).await;
    let last_id = first.json()["last_id"].as_str().unwrap().to_owned();
    let second = feed(&f.server, &format!("limit=10&{APRIL}&after_id={last_id}")).await;
    let first_id = second.json()["first_id"].as_str().unwrap().to_owned();
    // WHEN asking for 10 before the second page's first record
    let back = feed(&f.server, &format!("limit=10&{APRIL}&before_id={first_id}")).await;
    // THEN the first page comes back, in desc order, and nothing newer is left
    assert_eq!(back.ids(), first.ids());
    assert_eq!(back.json()["has_more"], false);
    // AND asking for 4 gives the 4 records adjacent to the cursor, with more beyond
    let near = feed(&f.server, &format!("limit=4&{APRIL}&before_id={first_id}")).await;
    assert_eq!(near.ids(), first.ids()[6..]);
    assert_eq!(near.json()["has_more"], true);
}

#[tokio::test]
async fn before_id_catches_up_with_records_added_after_the_newest_page() {
    // GIVEN a desc first page and then three newer activities
    let f = fixture().await;
    f.sim.generate(&april_spec(20, false));
    let first = feed(&f.server, &format!("limit=5&{APRIL}")).await;
    let top = first.json()["first_id"].as_str().unwrap().to_owned();
    let newer = f.sim.generate(&compliance_sim::GenerateSpec {
        count: 3,
        from: april(20, "00:00:00"),
        to: april(21, "00:00:00"),
        hidden: false,
    });
    // WHEN asking before the old top
    let caught_up = feed(&f.server, &format!("{APRIL}&before_id={top}")).await;
    // THEN exactly the three new ones come, newest first
    let newest_first: Vec<String> = visible_april_ids(&f.sim).into_iter().rev().take(3).collect();
    assert_eq!(caught_up.ids(), newest_first);
    let mut served = caught_up.ids();
    let mut added = newer;
    served.sort();
    added.sort();
    assert_eq!(served, added);
    assert_eq!(caught_up.json()["has_more"], false);
}

#[tokio::test]
async fn cursors_are_opaque_and_never_activity_ids() {
    // GIVEN a few pages
    let f = fixture().await;
    let ids: HashSet<String> = f.sim.generate(&april_spec(30, false)).into_iter().collect();
    let page = feed(&f.server, &format!("limit=7&{APRIL}")).await;
    let json = page.json();
    // THEN first_id and last_id are neither ids nor contain one or the id prefix
    for cursor in [&json["first_id"], &json["last_id"]] {
        let cursor = cursor.as_str().unwrap();
        assert!(cursor.starts_with("cur_"));
        assert!(!ids.contains(cursor));
        assert!(!cursor.contains("activity_"));
        assert!(ids.iter().all(|id| !cursor.contains(&id["activity_".len()..])));
    }
    assert_ne!(json["first_id"], json["last_id"]);
}

#[tokio::test]
async fn a_cursor_stays_a_position_while_records_are_added_around_it() {
    // GIVEN an asc page of 5 and its last cursor
    let f = fixture().await;
    f.sim.generate(&april_spec(10, false));
    let page = feed(&f.server, &format!("order=asc&limit=5&{APRIL}")).await;
    let cursor = page.json()["last_id"].as_str().unwrap().to_owned();
    let before_count = visible_april_ids(&f.sim).len();
    // WHEN records are added both before and after the cursor's position
    let mut spec = april_spec(20, false);
    spec.from = april(1, "00:00:00");
    spec.to = april(9, "00:00:00");
    f.sim.generate(&spec);
    // THEN after_id returns exactly the records now after that position
    let rest = feed(&f.server, &format!("order=asc&limit=100&{APRIL}&after_id={cursor}")).await;
    let all = visible_april_ids(&f.sim);
    let last_seen = page.ids().last().unwrap().clone();
    let position = all.iter().position(|id| *id == last_seen).unwrap();
    assert_eq!(rest.ids(), all[position + 1..]);
    assert_eq!(all.len(), before_count + 20);
}

#[tokio::test]
async fn hidden_records_are_served_only_after_reveal() {
    // GIVEN 10 visible and 5 hidden activities
    let f = fixture().await;
    f.sim.generate(&april_spec(10, false));
    let hidden: HashSet<String> = f.sim.generate(&april_spec(5, true)).into_iter().collect();
    // WHEN reading everything
    let before = feed(&f.server, &format!("limit=100&{APRIL}")).await;
    // THEN none of the hidden ones is served
    assert_eq!(before.ids().len(), 10);
    assert!(before.ids().iter().all(|id| !hidden.contains(id)));
    // AND after reveal_all they are
    assert_eq!(f.sim.reveal_all(), 5);
    let after = feed(&f.server, &format!("limit=100&{APRIL}")).await;
    assert_eq!(after.ids().len(), 15);
    assert!(hidden.iter().all(|id| after.ids().contains(id)));
}

#[tokio::test]
async fn each_record_is_served_as_its_exact_stored_bytes() {
    // GIVEN a hand-written record with unusual but valid JSON spacing and escapes
    let f = fixture().await;
    let raw = "{\"id\": \"activity_exact\" ,\"created_at\":\"2026-04-02T00:00:00.100Z\",\"organization_id\":null,\"type\":\"x\",\"s\":\"caf\\u00e9 \\/ \\ud83d\\ude80\",\"n\":1.50}";
    f.sim.insert_raw(raw, false).unwrap();
    f.sim.generate(&april_spec(200, false));
    // WHEN served
    let page = feed(&f.server, &format!("limit=500&{APRIL}")).await;
    // THEN the body holds every stored record's bytes verbatim, joined by commas
    let stored: Vec<String> = f
        .sim
        .activities()
        .into_iter()
        .filter(|a| a.created_at < may_first())
        .rev()
        .map(|a| a.raw)
        .collect();
    let expected_data = format!("{{\"data\":[{}],", stored.join(","));
    assert!(page.text().starts_with(&expected_data));
    assert!(page.text().contains(raw));
}

#[tokio::test]
async fn an_empty_page_has_null_cursors_and_no_more() {
    // GIVEN no activities in the range
    let f = fixture().await;
    // WHEN reading it
    let page = feed(&f.server, APRIL).await;
    // THEN the envelope is empty
    assert_eq!(page.text(), r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#);
    assert_eq!(page.header("content-type"), Some("application/json"));
}
