//! Bounded HTTP GETs for discovery documents and JWKS, on a client that refuses redirects
//! from https to anything else.

use reqwest::Url;
use std::time::Duration;

/// Documents larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// At most this many redirects are followed for one document.
pub const MAX_REDIRECTS: usize = 5;

/// The client for discovery and JWKS fetches: [`client_builder`], with redirects only as
/// [`redirect_allowed`] says.
pub(crate) fn http_client(
    timeout: Duration,
    extra_roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    client_builder(timeout, extra_roots)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // `previous` holds the original URL and every URL redirected from so far.
            let previous = attempt.previous();
            let verdict = match previous.last() {
                Some(from) => redirect_allowed(from, attempt.url(), previous.len()),
                None => Ok(()),
            };
            match verdict {
                Ok(()) => attempt.follow(),
                Err(reason) => {
                    let to = origin(attempt.url());
                    attempt.error(RefusedRedirect { to, reason })
                }
            }
        }))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// What every client that talks to an IdP shares: `timeout` for connecting and for each whole
/// request, no proxy from the environment, Portico's user agent, and `extra_roots` trusted in
/// addition to the platform's roots. The caller sets the redirect policy.
pub(crate) fn client_builder(
    timeout: Duration,
    extra_roots: &[reqwest::Certificate],
) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")));
    if extra_roots.is_empty() {
        builder
    } else {
        builder.tls_certs_merge(extra_roots.iter().cloned())
    }
}

/// Whether a fetch may follow its `hops`-th redirect, from `from` to `to`.
///
/// Keys fetched over https must not be replaced by whatever answers a plain-http URL: a
/// redirect from https to anything but https is refused (http to http is allowed: the
/// operator chose http, and `portico validate` warns about it). Only http(s) targets, and no
/// more than [`MAX_REDIRECTS`].
pub(crate) fn redirect_allowed(from: &Url, to: &Url, hops: usize) -> Result<(), &'static str> {
    if hops > MAX_REDIRECTS {
        return Err("too many redirects (at most 5 are followed)");
    }
    match (from.scheme(), to.scheme()) {
        ("https", "https") | ("http", "http" | "https") => Ok(()),
        ("https", _) => Err("a redirect from https must stay on https"),
        _ => Err("only http and https redirects are followed"),
    }
}

/// A redirect the policy refused; carried through reqwest's error as its source.
#[derive(Debug)]
struct RefusedRedirect {
    /// Scheme, host and port of the target (its path and query are not logged).
    to: String,
    reason: &'static str,
}

impl std::fmt::Display for RefusedRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirect to {} refused: {}", self.to, self.reason)
    }
}

impl std::error::Error for RefusedRedirect {}

fn origin(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => format!("{}:", url.scheme()),
    }
}

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
    /// A redirect Portico will not follow (see [`redirect_allowed`]).
    #[error("{url}: redirect to {to} refused: {reason}")]
    RedirectRefused {
        url: String,
        to: String,
        reason: &'static str,
    },
}

/// A fetched document and how long it may be cached, if the server said.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<Duration>,
}

/// GETs `url` (the client carries the timeouts), reading at most `MAX_DOCUMENT_BYTES`.
pub async fn get_document(client: &reqwest::Client, url: &str) -> Result<Fetched, FetchError> {
    let transport = |e: reqwest::Error| match refused_redirect(&e) {
        Some(refused) => FetchError::RedirectRefused {
            url: url.to_string(),
            to: refused.to.clone(),
            reason: refused.reason,
        },
        None => FetchError::Transport {
            url: url.to_string(),
            reason: without_url(&e),
        },
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

/// The OIDC discovery document of `issuer` (RFC 8414 §3: it must name exactly that issuer).
pub async fn discovery_document(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, FetchError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let fetched = get_document(client, &url).await?;
    let invalid = |reason: &str| FetchError::Invalid {
        url: url.clone(),
        reason: reason.into(),
    };
    let doc = match serde_json::from_slice(&fetched.body) {
        Ok(serde_json::Value::Object(doc)) => doc,
        _ => return Err(invalid("the discovery document is not a JSON object")),
    };
    if doc.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer) {
        return Err(invalid("the discovery document names a different issuer"));
    }
    Ok(doc)
}

/// The http(s) URL the discovery document `doc` (fetched for `issuer`) gives as `field`.
pub fn discovered_url(
    doc: &serde_json::Map<String, serde_json::Value>,
    issuer: &str,
    field: &str,
) -> Result<String, FetchError> {
    let invalid = |reason: String| FetchError::Invalid {
        url: format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
        reason,
    };
    let value = doc
        .get(field)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid(format!("the discovery document has no {field}")))?;
    portico_core::HttpUrl::try_new(value)
        .map(|url| url.to_string())
        .map_err(|_| invalid(format!("{field} is not an http(s) URL")))
}

fn refused_redirect(e: &reqwest::Error) -> Option<&RefusedRedirect> {
    let source = std::error::Error::source(e)?;
    e.is_redirect()
        .then(|| source.downcast_ref::<RefusedRedirect>())
        .flatten()
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn redirects_from_https_must_stay_on_https() {
        let https = url("https://idp.example/jwks");
        let http = url("http://idp.example/jwks");
        assert_eq!(
            redirect_allowed(&https, &url("https://cdn.example/k"), 1),
            Ok(())
        );
        assert_eq!(
            redirect_allowed(&http, &url("http://cdn.example/k"), 1),
            Ok(())
        );
        assert_eq!(
            redirect_allowed(&http, &https, 1),
            Ok(()),
            "an upgrade is fine"
        );
        assert_eq!(
            redirect_allowed(&https, &http, 1),
            Err("a redirect from https must stay on https")
        );
        assert!(redirect_allowed(&https, &url("ftp://idp.example/jwks"), 1).is_err());
        assert!(redirect_allowed(&http, &url("file:///etc/passwd"), 1).is_err());
    }

    #[test]
    fn at_most_five_redirects() {
        let (a, b) = (url("http://a.example/"), url("http://b.example/"));
        assert_eq!(redirect_allowed(&a, &b, MAX_REDIRECTS), Ok(()));
        assert_eq!(
            redirect_allowed(&a, &b, MAX_REDIRECTS + 1),
            Err("too many redirects (at most 5 are followed)")
        );
    }

    /// A loopback HTTP/1.1 server that answers `/doc` with `{}` and any other path `/n` with a
    /// redirect to `/n+1`, up to `/{last}`, which redirects to `/doc`.
    async fn redirect_chain(last: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let answer = match path.trim_start_matches('/').parse::<usize>() {
                        Ok(i) => {
                            let next = if i >= last {
                                "/doc".to_string()
                            } else {
                                format!("/{}", i + 1)
                            };
                            format!(
                                "HTTP/1.1 302 Found\r\nlocation: {next}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            )
                        }
                        Err(_) => {
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                                .to_string()
                        }
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        base
    }

    #[tokio::test]
    async fn http_redirects_are_followed_up_to_the_limit_and_refusals_say_so() {
        let client = http_client(Duration::from_secs(5), &[]).unwrap();
        let base = redirect_chain(5).await;
        let five = get_document(&client, &format!("{base}/1")).await.unwrap();
        assert_eq!(five.body, b"{}", "five http redirects are followed");

        let base = redirect_chain(6).await;
        let err = get_document(&client, &format!("{base}/1"))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::RedirectRefused { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("redirect to http://127.0.0.1:")
                && message.contains("refused: too many redirects"),
            "{message}"
        );
    }

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
