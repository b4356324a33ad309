//! Reading values out of token claims by dotted path (`realm_access.roles`).

use serde_json::Value;
use std::fmt;

/// A path to a claim: dot-separated member names, e.g. `sub` or `realm_access.roles`.
///
/// A top-level claim whose name itself contains a dot (`https://example.com/roles`) is found
/// too: the whole path is tried as one member name first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath {
    raw: String,
}

impl ClaimPath {
    /// Accepts any non-empty path without empty segments.
    pub fn try_new(raw: impl Into<String>) -> Result<Self, String> {
        let raw = raw.into();
        if raw.is_empty() || raw.split('.').any(str::is_empty) {
            return Err(format!(
                "claim path {raw:?} must be non-empty names separated by '.'"
            ));
        }
        Ok(Self { raw })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The value at this path, if present.
    pub fn lookup<'a>(&self, claims: &'a serde_json::Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = claims.get(&self.raw) {
            return Some(v);
        }
        let mut segments = self.raw.split('.');
        let mut current = claims.get(segments.next()?)?;
        for segment in segments {
            current = current.as_object()?.get(segment)?;
        }
        Some(current)
    }

    /// The value as a single identity string: strings as they are, numbers in their JSON form.
    /// Empty strings, objects, arrays and booleans are not identities.
    pub fn lookup_scalar(&self, claims: &serde_json::Map<String, Value>) -> Option<String> {
        match self.lookup(claims)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The value as a list of strings: a space-separated string (OAuth `scope`) or an array of
    /// strings (`scp`, `roles`). Non-string array members are skipped.
    pub fn lookup_list<'a>(&self, claims: &'a serde_json::Map<String, Value>) -> Vec<&'a str> {
        match self.lookup(claims) {
            Some(Value::String(s)) => s.split_ascii_whitespace().collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rejects_empty_segments() {
        assert!(ClaimPath::try_new("").is_err());
        assert!(ClaimPath::try_new("a..b").is_err());
        assert!(ClaimPath::try_new(".a").is_err());
        assert!(ClaimPath::try_new("a.b").is_ok());
    }

    #[test]
    fn looks_up_nested_and_dotted_names() {
        let c = claims(json!({"realm_access": {"roles": ["a", "b"]}, "https://x.io/r": "z"}));
        let nested = ClaimPath::try_new("realm_access.roles").unwrap();
        assert_eq!(nested.lookup_list(&c), vec!["a", "b"]);
        let dotted = ClaimPath::try_new("https://x.io/r").unwrap();
        assert_eq!(dotted.lookup_scalar(&c).as_deref(), Some("z"));
        assert!(
            ClaimPath::try_new("realm_access.nope")
                .unwrap()
                .lookup(&c)
                .is_none()
        );
    }

    #[test]
    fn scalars_and_lists() {
        let c = claims(json!({"sub": "", "n": 42, "scope": "a  b c", "b": true, "arr": ["x", 1]}));
        assert_eq!(ClaimPath::try_new("sub").unwrap().lookup_scalar(&c), None);
        assert_eq!(
            ClaimPath::try_new("n")
                .unwrap()
                .lookup_scalar(&c)
                .as_deref(),
            Some("42")
        );
        assert_eq!(ClaimPath::try_new("b").unwrap().lookup_scalar(&c), None);
        assert_eq!(
            ClaimPath::try_new("scope").unwrap().lookup_list(&c),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            ClaimPath::try_new("arr").unwrap().lookup_list(&c),
            vec!["x"]
        );
        assert!(
            ClaimPath::try_new("missing")
                .unwrap()
                .lookup_list(&c)
                .is_empty()
        );
    }
}
