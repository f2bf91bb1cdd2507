//! Control endpoints under `/_sim/`, for driving a simulator running in another process.
//!
//! No authentication, not recorded as API requests, no latency. Each is a thin JSON wrapper
//! over the library API of the same name. Bodies are parsed here (not by axum's `Json`
//! extractor) so a missing `content-type` is not an error and every refusal is a JSON 400.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::faults::Fault;
use crate::generate::GenerateSpec;
use crate::simulator::Simulator;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    count: usize,
    from: Timestamp,
    to: Timestamp,
    #[serde(default)]
    hidden: bool,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})),
    )
        .into_response()
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

/// `POST /_sim/generate` `{"count","from","to","hidden"}` → `{"ids":[...]}`.
pub(crate) async fn generate(State(sim): State<Simulator>, body: Bytes) -> Response {
    let body: GenerateBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return bad_request(message),
    };
    let ids = sim.generate(&GenerateSpec {
        count: body.count,
        from: body.from,
        to: body.to,
        hidden: body.hidden,
    });
    Json(json!({ "ids": ids })).into_response()
}

/// `POST /_sim/reveal` → `{"revealed":N}`.
pub(crate) async fn reveal(State(sim): State<Simulator>) -> Response {
    Json(json!({ "revealed": sim.reveal_all() })).into_response()
}

#[derive(Serialize)]
struct ActivitySummary {
    id: String,
    created_at: Timestamp,
    visible: bool,
    organization_id: Option<String>,
    #[serde(rename = "type")]
    activity_type: String,
}

/// `GET /_sim/activities` → every activity, visible or not, oldest first.
pub(crate) async fn activities(State(sim): State<Simulator>) -> Response {
    let summaries: Vec<ActivitySummary> = sim
        .activities()
        .into_iter()
        .map(|a| ActivitySummary {
            id: a.id,
            created_at: a.created_at,
            visible: a.visible,
            organization_id: a.organization_id,
            activity_type: a.activity_type,
        })
        .collect();
    Json(summaries).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InsertParams {
    #[serde(default)]
    hidden: bool,
}

/// `POST /_sim/insert?hidden=bool` with one raw activity as the body → `{"id":...}`.
pub(crate) async fn insert(
    State(sim): State<Simulator>,
    Query(params): Query<InsertParams>,
    body: Bytes,
) -> Response {
    let Ok(raw) = std::str::from_utf8(&body) else {
        return bad_request("body is not UTF-8".to_owned());
    };
    match sim.insert_raw(raw, params.hidden) {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(error) => bad_request(error.to_string()),
    }
}

/// `GET /_sim/requests` → every API request answered, in order.
pub(crate) async fn requests(State(sim): State<Simulator>) -> Response {
    Json(sim.requests()).into_response()
}

/// `POST /_sim/faults` with an array of fault slots (`null` = a clean slot) → `{"queued":N}`
/// (slots now pending).
pub(crate) async fn faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let slots: Vec<Option<Fault>> = match parse(&body) {
        Ok(f) => f,
        Err(message) => return bad_request(message),
    };
    sim.push_schedule(slots);
    Json(json!({ "queued": sim.pending_faults() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomBody {
    seed: u64,
    len: usize,
}

/// `POST /_sim/faults/random` `{"seed","len"}` → queues [`Fault::random_schedule`] →
/// `{"queued":N}`.
pub(crate) async fn random_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let body: RandomBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return bad_request(message),
    };
    sim.push_schedule(Fault::random_schedule(body.seed, body.len));
    Json(json!({ "queued": sim.pending_faults() })).into_response()
}

/// `POST /_sim/faults/clear` → `{"cleared":N}`.
pub(crate) async fn clear_faults(State(sim): State<Simulator>) -> Response {
    Json(json!({ "cleared": sim.clear_faults().len() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    key: String,
}

/// `POST /_sim/revoke` `{"key"}` → `{"revoked":true}`: 401 for that key from now on.
pub(crate) async fn revoke(State(sim): State<Simulator>, body: Bytes) -> Response {
    let body: RevokeBody = match parse(&body) {
        Ok(b) => b,
        Err(message) => return bad_request(message),
    };
    sim.revoke_key(&body.key);
    Json(json!({ "revoked": true })).into_response()
}
