//! The request line of one page: path and query string, built by hand so the API sees exactly
//! what its documentation shows: literal `[]` on array parameters, `created_at` bounds in `Z`
//! form, every value percent-encoded, the cursor passed through untouched but for encoding.

use std::fmt::Write;

use jiff::Timestamp;

use super::PageQuery;

pub const ACTIVITIES_PATH: &str = "v1/compliance/activities";

/// The query string (without `?`) for one page, oldest first within `[from, to)`.
pub fn query_string(q: &PageQuery) -> String {
    let mut out = String::with_capacity(160);
    push(&mut out, "limit", &q.limit.to_string());
    push(&mut out, "order", "asc");
    push(&mut out, "created_at.gte", &rfc3339_z(q.from));
    push(&mut out, "created_at.lt", &rfc3339_z(q.to));
    if let Some(cursor) = &q.after {
        push(&mut out, "after_id", cursor);
    }
    for org in &q.organization_ids {
        push(&mut out, "organization_ids[]", org);
    }
    out
}

/// RFC 3339 in UTC with a `Z`, fractional seconds only when present.
pub fn rfc3339_z(t: Timestamp) -> String {
    t.to_string()
}

fn push(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(key);
    out.push('=');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_stay_literal_and_values_are_encoded() {
        // GIVEN a resumed query with two organizations and a cursor holding reserved characters
        let q = PageQuery {
            from: "2026-04-01T00:00:00Z".parse().unwrap(),
            to: "2026-04-01T00:15:00.5Z".parse().unwrap(),
            after: Some("cur_a+b/c=".into()),
            organization_ids: vec!["org_1".into(), "5b236db4-3fb4-4bf3-a560-b5e266038a15".into()],
            limit: 5000,
        };
        // THEN the query is exactly what the docs show
        assert_eq!(
            query_string(&q),
            "limit=5000&order=asc&created_at.gte=2026-04-01T00:00:00Z\
             &created_at.lt=2026-04-01T00:15:00.5Z&after_id=cur_a%2Bb%2Fc%3D\
             &organization_ids[]=org_1&organization_ids[]=5b236db4-3fb4-4bf3-a560-b5e266038a15"
        );
    }
}
