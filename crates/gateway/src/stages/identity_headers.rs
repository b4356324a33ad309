//! Telling the upstream who called: identity, session id and mapped claims as headers.
//! Whatever the client sent under those names is removed first, so they cannot be forged.

use http::{HeaderMap, HeaderName, HeaderValue};
use portico_core::UpstreamHeaders;
use serde_json::{Map, Value};

/// The configured header names, parsed once per config version.
#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    identity: Option<HeaderName>,
    session: Option<HeaderName>,
    claims: Vec<(portico_core::ClaimPath, HeaderName)>,
}

impl IdentityHeaderNames {
    pub fn try_new(config: &UpstreamHeaders) -> Result<Self, String> {
        let parse = |name: &str| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))
        };
        Ok(Self {
            identity: config.identity.as_deref().map(parse).transpose()?,
            session: config.session.as_deref().map(parse).transpose()?,
            claims: config
                .claims
                .iter()
                .map(|(c, h)| Ok((c.clone(), parse(h)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// Removes client-sent copies of every identity header.
    pub fn remove_from(&self, headers: &mut HeaderMap) {
        for name in self
            .identity
            .iter()
            .chain(&self.session)
            .chain(self.claims.iter().map(|(_, h)| h))
        {
            headers.remove(name);
        }
    }

    pub fn insert(
        &self,
        headers: &mut HeaderMap,
        identity: &HeaderValue,
        session_hex: &str,
        claims: &Map<String, Value>,
    ) {
        if let Some(name) = &self.identity {
            headers.insert(name.clone(), identity.clone());
        }
        if let (Some(name), Ok(v)) = (&self.session, HeaderValue::from_str(session_hex)) {
            headers.insert(name.clone(), v);
        }
        for (claim, name) in &self.claims {
            let text = match claim.lookup(claims) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => continue,
            };
            if let Ok(v) = HeaderValue::from_bytes(text.as_bytes()) {
                headers.insert(name.clone(), v);
            }
        }
    }
}
