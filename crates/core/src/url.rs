//! [`HttpUrl`]: an absolute `http://` or `https://` URL, checked once where it enters the
//! configuration, so nothing downstream re-checks strings.

use std::fmt;

/// An absolute `http(s)://host[:port][/path][?query]` URL with no user info and no fragment.
/// The host is lower-cased; the rest is kept as written.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    text: String,
    https: bool,
    /// Byte range of the authority (`host[:port]`) in `text`.
    authority: (usize, usize),
}

impl HttpUrl {
    pub fn try_new(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| format!("{raw:?} is not an absolute http:// or https:// URL"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => {
                return Err(format!(
                    "{raw:?}: scheme {scheme:?} is not supported (use http:// or https://)"
                ));
            }
        };
        if rest.contains('#') {
            return Err(format!("{raw:?} must not have a fragment"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(format!("{raw:?} needs a host"));
        }
        if authority.contains('@') {
            return Err(format!("{raw:?} must not carry user info"));
        }
        if authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!("{raw:?} has an invalid host"));
        }
        let parsed = http::uri::Authority::try_from(authority)
            .map_err(|_| format!("{raw:?} has an invalid host"))?;
        let port = authority
            .rsplit_once(']')
            .map_or(authority, |(_, p)| p)
            .rsplit_once(':')
            .map(|(_, p)| p);
        if parsed.host().is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(format!("{raw:?} has an invalid host or port"));
        }
        let scheme = if https { "https" } else { "http" };
        let authority = authority.to_ascii_lowercase();
        let text = format!("{scheme}://{authority}{tail}");
        let start = scheme.len() + 3;
        Ok(Self {
            authority: (start, start + authority.len()),
            text,
            https,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// `host[:port]` as written (host lower-cased).
    pub fn authority(&self) -> &str {
        &self.text[self.authority.0..self.authority.1]
    }

    /// The host without port; IPv6 addresses without brackets.
    pub fn host(&self) -> &str {
        let authority = self.authority();
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    }

    /// The explicit port, or the scheme's default (80, 443).
    pub fn port(&self) -> u16 {
        let authority = self.authority();
        let after_host = authority.rsplit_once(']').map_or(authority, |(_, p)| p);
        after_host
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(if self.https { 443 } else { 80 })
    }

    /// Path and query (may be empty).
    pub fn path_and_query(&self) -> &str {
        &self.text[self.authority.1..]
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u = HttpUrl::try_new("https://IdP.Example:8443/realms/x?a=1").unwrap();
        assert!(u.is_https());
        assert_eq!(u.authority(), "idp.example:8443");
        assert_eq!(u.host(), "idp.example");
        assert_eq!(u.port(), 8443);
        assert_eq!(u.path_and_query(), "/realms/x?a=1");
        assert_eq!(u.as_str(), "https://idp.example:8443/realms/x?a=1");
        let v6 = HttpUrl::try_new("http://[::1]:9000").unwrap();
        assert_eq!(
            (v6.host(), v6.port(), v6.path_and_query()),
            ("::1", 9000, "")
        );
        assert_eq!(HttpUrl::try_new("http://h").unwrap().port(), 80);
        assert_eq!(HttpUrl::try_new("https://h/").unwrap().port(), 443);
    }

    #[test]
    fn refused() {
        for bad in [
            "ftp://h",
            "h:80",
            "http://",
            "http:///path",
            "http://u:p@h",
            "http://h/#frag",
            "http://h:/x",
            "http://h:port",
            "http://h h",
            "//h",
        ] {
            assert!(HttpUrl::try_new(bad).is_err(), "{bad}");
        }
    }
}
