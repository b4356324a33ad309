//! Bounded HTTP GETs for discovery documents and JWKS.

use std::time::Duration;

/// Documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url}: {reason}")]
    Invalid { url: String, reason: String },
}

/// A fetched document and how long it may be cached, if the server said.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// GETs `url` (the client carries the timeouts), reading at most `MAX_DOCUMENT_BYTES`.
pub async fn get_document(client: &reqwest::Client, url: &str) -> Result<Fetched, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: url.to_string(),
        reason: without_url(&e),
    };
    let mut response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(transport)?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(cache_max_age);
    if response
        .content_length()
        .is_some_and(|l| l > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body, max_age })
}

/// reqwest's Display repeats the URL; keep the cause only.
fn without_url(e: &reqwest::Error) -> String {
    let mut reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "transport error".to_string()
    };
    if let Some(source) = std::error::Error::source(e) {
        reason.push_str(&format!(" ({source})"));
    }
    reason
}

/// `max-age` from a Cache-Control value; `no-store`/`no-cache` mean zero (the caller's lower
/// bound then applies).
pub fn cache_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            max_age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cache_control() {
        assert_eq!(
            cache_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(cache_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(
            cache_max_age("Max-Age=\"30\""),
            Some(Duration::from_secs(30))
        );
        assert_eq!(cache_max_age("private"), None);
        assert_eq!(cache_max_age("max-age=x"), None);
    }
}
