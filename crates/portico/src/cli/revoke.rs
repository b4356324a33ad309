//! `portico revoke` and `portico revocations`: tokens refused before their `exp`, through the
//! admin REST API of a running control plane (see `docs/revocation.md`).

use super::resources::{ServerArgs, call, fail};
use portico_admin::revocations::{RevocationList, RevocationRecord, RevocationRequest};
use std::process::ExitCode;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["client_id", "jti", "identity"])))]
pub struct RevokeArgs {
    /// Every token issued to this OAuth client.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The one token with this `jti`.
    #[arg(long, value_name = "JTI")]
    pub jti: Option<String>,
    /// Every token naming this identity (the API's identity claim, `sub` unless configured).
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
    /// Only tokens of this issuer; every issuer without it.
    #[arg(long, value_name = "ISSUER")]
    pub issuer: Option<String>,
    /// When the revocation ends: an RFC 3339 time or a duration from now (`90m`, `12h`,
    /// `7d`). Default: the configured `max_token_lifetime_secs` (24 hours) from now.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only tokens issued before this moment (`now`, an RFC 3339 time, or a duration ago),
    /// so that the client can carry on with a new token.
    #[arg(long, value_name = "TIME")]
    pub issued_before: Option<String>,
    /// Why, for operators (never shown to callers).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RevocationsArgs {
    /// Lift the revocation with this id instead of listing them.
    #[arg(long, value_name = "ID")]
    pub lift: Option<i64>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `90m`, `12h`, `7d`, `30s`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3_600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// `text` as an RFC 3339 time: given as one, `now`, or a duration from now (`ahead`) or ago.
fn time_arg(flag: &str, text: &str, ahead: bool) -> Result<String, String> {
    let now = OffsetDateTime::now_utc();
    let at = if text == "now" {
        now
    } else if let Some(d) = duration(text) {
        let moved = if ahead {
            now.checked_add(d.try_into().unwrap_or(time::Duration::MAX))
        } else {
            now.checked_sub(d.try_into().unwrap_or(time::Duration::MAX))
        };
        moved.ok_or_else(|| format!("{flag} {text:?}: too far from now"))?
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            format!("{flag} {text:?}: an RFC 3339 time (2026-12-31T23:00:00Z), `now`, or a duration such as 90m, 12h, 7d")
        })?
    };
    at.format(&Rfc3339).map_err(|e| format!("{flag}: {e}"))
}

fn describe(r: &RevocationRecord) -> String {
    let (by, value) = match (&r.client_id, &r.jti, &r.identity) {
        (Some(v), _, _) => ("client_id", v),
        (_, Some(v), _) => ("jti", v),
        (_, _, Some(v)) => ("identity", v),
        _ => ("?", &String::new()),
    };
    let mut line = format!("{} {by}={value:?} until {}", r.id, r.until);
    if let Some(issuer) = &r.issuer {
        line.push_str(&format!(" issuer={issuer:?}"));
    }
    if let Some(before) = &r.issued_before {
        line.push_str(&format!(" issued_before {before}"));
    }
    if let Some(reason) = &r.reason {
        line.push_str(&format!(" ({reason})"));
    }
    line
}

pub fn revoke(args: RevokeArgs) -> ExitCode {
    let times = (|| {
        Ok::<_, String>((
            args.until
                .as_deref()
                .map(|t| time_arg("--until", t, true))
                .transpose()?,
            args.issued_before
                .as_deref()
                .map(|t| time_arg("--issued-before", t, false))
                .transpose()?,
        ))
    })();
    let (until, issued_before) = match times {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let request = RevocationRequest {
        client_id: args.client_id,
        jti: args.jti,
        identity: args.identity,
        issuer: args.issuer,
        until,
        issued_before,
        reason: args.reason,
    };
    let answer = call(
        &args.server,
        reqwest::Method::POST,
        &["revocations"],
        None,
        Some(&request),
    )
    .and_then(|body| {
        serde_json::from_slice::<RevocationRecord>(&body)
            .map_err(|e| format!("unexpected answer: {e}"))
    });
    match answer {
        Ok(record) => {
            println!("revoked: {}", describe(&record));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn revocations(args: RevocationsArgs) -> ExitCode {
    if let Some(id) = args.lift {
        let id = id.to_string();
        return match call::<()>(
            &args.server,
            reqwest::Method::DELETE,
            &["revocations", &id],
            None,
            None,
        ) {
            Ok(_) => {
                println!("revocation {id} lifted");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let answer = call::<()>(
        &args.server,
        reqwest::Method::GET,
        &["revocations"],
        None,
        None,
    )
    .and_then(|body| {
        serde_json::from_slice::<RevocationList>(&body)
            .map_err(|e| format!("unexpected answer: {e}"))
    });
    match answer {
        Ok(list) => {
            for r in &list.revocations {
                println!("{}", describe(r));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_now_or_durations() {
        assert_eq!(duration("90m"), Some(Duration::from_secs(5_400)));
        assert_eq!(duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(duration("12"), None);
        assert_eq!(duration("h"), None);
        assert_eq!(duration("5w"), None);
        assert_eq!(
            time_arg("--until", "2026-12-31T23:00:00Z", true).unwrap(),
            "2026-12-31T23:00:00Z"
        );
        assert!(time_arg("--until", "tomorrow", true).is_err());
        assert!(
            time_arg("--until", "99999999999d", true).is_err(),
            "no overflow panic"
        );
        let ahead =
            OffsetDateTime::parse(&time_arg("--until", "1h", true).unwrap(), &Rfc3339).unwrap();
        let ago = OffsetDateTime::parse(&time_arg("--x", "1h", false).unwrap(), &Rfc3339).unwrap();
        assert!(ahead - ago >= time::Duration::seconds(7_190));
    }
}
