//! The locked door (`--api-key-file`): every request carries `Authorization: Bearer
//! KEY` with one of the file's keys, or gets 401 in the service's one error shape.
//! `/healthz` and `/metrics` are closed too unless opened by flag (`--open-healthz`,
//! `--open-metrics`: a load balancer's probe or a Prometheus scraper inside the
//! network may need them without a key).
//!
//! Keys are kept as their sha256 and a presented key is hashed and compared with
//! every stored hash without an early exit, so neither a key's length nor how much of
//! it matched shows in the time an answer takes. TLS is not terminated here: put the
//! service behind a proxy that does (docs/serve.md), since a bearer key sent in the
//! clear is a key given away.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Keys shorter than this are refused at start: guessable.
pub const MIN_KEY_LEN: usize = 16;

/// The accepted keys, as sha256 digests.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// Reads one key a line (surrounding whitespace trimmed; blank lines and lines
    /// starting with `#` skipped). Refuses a file with no key, a key shorter than
    /// [`MIN_KEY_LEN`] or one with whitespace inside, naming the line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--api-key-file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("--api-key-file {}: {e}", path.display()))
    }

    /// [`Self::load`] on the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let key = line.trim();
            if key.is_empty() || key.starts_with('#') {
                continue;
            }
            if key.len() < MIN_KEY_LEN {
                return Err(format!(
                    "line {}: a key of {} characters is too short (at least {MIN_KEY_LEN})",
                    i + 1,
                    key.len()
                ));
            }
            if key.chars().any(char::is_whitespace) {
                return Err(format!("line {}: a key holds whitespace", i + 1));
            }
            digests.push(digest(key.as_bytes()));
        }
        if digests.is_empty() {
            return Err("no key in the file (one key a line)".into());
        }
        Ok(ApiKeys { digests })
    }

    /// Whether `presented` is one of the keys, in time independent of which key
    /// (if any) it matches and of how many of its bytes do.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let d = digest(presented);
        let mut any = 0u8;
        for k in &self.digests {
            let diff = k.iter().zip(&d).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            any |= u8::from(diff == 0);
        }
        std::hint::black_box(any) == 1
    }
}

/// The key of an `Authorization: Bearer KEY` header, if that is what it holds.
fn bearer(v: &HeaderValue) -> Option<&[u8]> {
    let b = v.as_bytes();
    let (scheme, rest) = b.split_at(b.iter().position(|&c| c == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Lets a request through when the service has no keys, the route is open, or the
/// request carries a valid key; 401 otherwise.
pub(crate) async fn check(
    State(st): State<std::sync::Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(keys) = &st.options.api_keys else {
        return next.run(req).await;
    };
    let open = match req.uri().path() {
        "/healthz" => st.options.open_healthz,
        "/metrics" => st.options.open_metrics,
        _ => false,
    };
    let ok = open
        || (req.headers().get(header::AUTHORIZATION))
            .and_then(bearer)
            .is_some_and(|k| keys.accepts(k));
    if ok {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or invalid API key: send `Authorization: Bearer KEY`",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_one_a_line_and_checked() {
        let k = ApiKeys::parse("# ops team\n  0123456789abcdef  \n\nfedcba9876543210zz\n").unwrap();
        assert!(k.accepts(b"0123456789abcdef"));
        assert!(k.accepts(b"fedcba9876543210zz"));
        assert!(!k.accepts(b"0123456789abcde"));
        assert!(!k.accepts(b"0123456789abcdef "));
        assert!(!k.accepts(b""));
        assert!(
            ApiKeys::parse("# nothing\n\n")
                .unwrap_err()
                .contains("no key")
        );
        assert!(ApiKeys::parse("short\n").unwrap_err().contains("line 1"));
        assert!(
            ApiKeys::parse("0123456789 abcdef\n")
                .unwrap_err()
                .contains("whitespace")
        );
    }

    #[test]
    fn only_a_bearer_header_carries_a_key() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&v("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer(&v("Basic abc")), None);
        assert_eq!(bearer(&v("Bearer")), None);
    }
}
