//! The service's one error shape: a status code and `{"error": "one line"}`.
//! Every failure a client can see goes through [`ApiError`], axum's own rejections
//! included, so clients parse one shape whatever went wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// `message` on one line (library messages sometimes carry newlines).
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        let message = message.trim().replace(['\n', '\r'], " ");
        ApiError { status, message }
    }

    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request took longer than the server's {} s limit (--request-timeout)",
                limit.as_secs_f64()
            ),
        )
    }

    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; retry on another instance",
        )
    }

    /// A server-side failure: logged here, since the client only sees one line.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        let e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, message);
        tracing::error!(error = %e.message, "request failed");
        e
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// The runtime's errors by kind, never by message: a client's fault is 400, a full
/// queue 429, a stopped scheduler 503, anything else the server's (500).
impl From<c3_runtime::Error> for ApiError {
    fn from(e: c3_runtime::Error) -> Self {
        use c3_runtime::Error as E;
        match &e {
            E::QueueFull { .. } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, &e),
            E::Stopped => ApiError::shutting_down(),
            _ if e.is_client_error() => ApiError::bad_request(&e),
            _ => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}
