//! [`RedisUrl`]: where the shared limiter's Redis is, checked once where it enters the
//! configuration. It may carry a password, so it never prints one.

use std::fmt;

/// A `redis://[user[:password]@]host[:port][/db]` URL (plain TCP; TLS is not supported yet).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    text: String,
    /// Byte range of the password in `text`, if there is one.
    password: Option<(usize, usize)>,
}

impl RedisUrl {
    pub fn try_new(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            "is not a redis:// URL (expected redis://host:port or redis://host:port/db)".to_string()
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => {
                return Err("rediss:// (TLS) is not supported yet: use redis:// on a \
                            trusted network"
                    .into());
            }
            other => {
                return Err(format!(
                    "scheme {other:?} is not supported (use redis://host:port)"
                ));
            }
        }
        let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err("the path must be a database number, as in redis://host:6379/0".into());
        }
        let (user_info, host_port) = match authority.rsplit_once('@') {
            Some((user_info, host_port)) => (Some(user_info), host_port),
            None => (None, authority),
        };
        let port = host_port
            .rsplit_once(']')
            .map_or(host_port, |(_, p)| p)
            .rsplit_once(':')
            .map(|(_, p)| p);
        let host_len = host_port.len() - port.map_or(0, |p| p.len() + 1);
        if host_len == 0
            || host_port
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?')
        {
            return Err("needs a host, as in redis://127.0.0.1:6379".into());
        }
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err("has an invalid port".into());
        }
        let scheme_len = scheme.len() + 3;
        let password = user_info.and_then(|info| {
            let (user, password) = info.split_once(':')?;
            let start = scheme_len + user.len() + 1;
            Some((start, start + password.len()))
        });
        Ok(Self {
            text: text.to_string(),
            password,
        })
    }

    /// The URL as written, password included: for the Redis client only, never for logs.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with its password (if any) replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.password {
            Some((start, end)) => write!(f, "{}***{}", &self.text[..start], &self.text[end..]),
            None => f.write_str(&self.text),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_shown_without_password() {
        for (raw, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://cache", "redis://cache"),
            ("redis://cache:6380/2", "redis://cache:6380/2"),
            ("redis://[::1]:6379", "redis://[::1]:6379"),
            (
                "redis://portico:s3cret@cache:6379/0",
                "redis://portico:***@cache:6379/0",
            ),
            ("redis://:s3cret@cache", "redis://:***@cache"),
        ] {
            let url = RedisUrl::try_new(raw).unwrap();
            assert_eq!(url.to_string(), shown, "{raw}");
            assert_eq!(url.expose(), raw);
            assert!(!format!("{url:?}").contains("s3cret"));
        }
    }

    #[test]
    fn refused() {
        for bad in [
            "127.0.0.1:6379",
            "http://cache:6379",
            "rediss://cache:6379",
            "unix:///run/redis.sock",
            "redis://",
            "redis://:6379",
            "redis://cache:port",
            "redis://cache:6379/x",
            "redis://ca che",
        ] {
            assert!(RedisUrl::try_new(bad).is_err(), "{bad}");
        }
    }
}
