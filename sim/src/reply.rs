//! A transport-neutral API answer, and the API's error body.
//!
//! The feed logic builds a [`Reply`]; only `http.rs` turns it into an axum response. Every
//! reply carries a `request-id` header, and every error body has the documented shape
//! `{"type":"error","error":{"type":..,"message":..},"request_id":"req_.."}`.

use serde::Serialize;

/// The `error.type` values of the API, by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorType {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RateLimit,
    Api,
    Overloaded,
}

impl ErrorType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RateLimit => "rate_limit_error",
            Self::Api => "api_error",
            Self::Overloaded => "overloaded_error",
        }
    }

    /// The type the API uses for a status, for faults that give only a status.
    pub(crate) fn for_status(status: u16) -> Self {
        match status {
            401 => Self::Authentication,
            403 => Self::Permission,
            404 => Self::NotFound,
            429 => Self::RateLimit,
            529 => Self::Overloaded,
            400..=499 => Self::InvalidRequest,
            _ => Self::Api,
        }
    }
}

/// One HTTP answer: status, extra headers (`request-id` and `content-type` are added by the
/// edge), body, and how the body goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
    pub(crate) wire: Wire,
}

/// How the edge sends a reply's body: whole, or damaged by a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Wire {
    #[default]
    Whole,
    /// Announce the whole length, send this many bytes, then drop the connection.
    ResetAfter(usize),
    /// Send the body with the byte at this offset replaced by 0xFF (never valid UTF-8).
    NonUtf8At(usize),
    /// Send the body whole but chunked, without a `content-length`.
    Chunked,
}

impl Reply {
    pub(crate) fn ok(body: String) -> Self {
        Self { status: 200, headers: Vec::new(), body, wire: Wire::Whole }
    }

    /// An error with the documented body.
    pub(crate) fn error(status: u16, error_type: &str, message: &str, request_id: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: error_body(error_type, message, request_id),
            wire: Wire::Whole,
        }
    }

    pub(crate) fn with_wire(mut self, wire: Wire) -> Self {
        self.wire = wire;
        self
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

pub(crate) fn error_body(error_type: &str, message: &str, request_id: &str) -> String {
    let body =
        ErrorBody { kind: "error", error: ErrorDetail { kind: error_type, message }, request_id };
    // Plain strings always serialise.
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_have_the_documented_shape() {
        let body = error_body("permission_error", "Missing \"scope\"", "req_1");
        assert_eq!(
            body,
            r#"{"type":"error","error":{"type":"permission_error","message":"Missing \"scope\""},"request_id":"req_1"}"#
        );
    }

    #[test]
    fn status_only_faults_get_the_matching_error_type() {
        assert_eq!(ErrorType::for_status(429).as_str(), "rate_limit_error");
        assert_eq!(ErrorType::for_status(529).as_str(), "overloaded_error");
        assert_eq!(ErrorType::for_status(503).as_str(), "api_error");
        assert_eq!(ErrorType::for_status(400).as_str(), "invalid_request_error");
    }
}
