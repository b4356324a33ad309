//! Tyk's rate limits (`rate` per `per` seconds) and quotas (`quota_max` per
//! `quota_renewal_rate` seconds), converted exactly or refused: a limit is never dropped.

use super::json_kind;
use portico_core::policy::{Quota, RateLimit};
use serde_json::{Map, Value};

/// A number field: `None` when absent or null; an error for anything else that is not a number.
pub(super) fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(format!("{key} must be a number, not {}", json_kind(other))),
    }
}

/// `rate` requests per `per` seconds. `rate` 0 or -1 (what Tyk reads as "unlimited") is no
/// limit; any other negative rate, or a rate with no positive `per`, is an error.
pub(super) fn rate_limit(obj: &Map<String, Value>) -> Result<Option<RateLimit>, String> {
    let rate = number(obj, "rate")?.unwrap_or(0.0);
    let per = number(obj, "per")?.unwrap_or(0.0);
    if rate == 0.0 || rate == -1.0 {
        return Ok(None);
    }
    if rate < 0.0 {
        return Err(format!(
            "rate {rate} is negative (only -1, Tyk's \"unlimited\", is allowed)"
        ));
    }
    if per <= 0.0 {
        return Err(format!(
            "rate {rate} needs a period: per must be > 0 seconds, not {per}"
        ));
    }
    rate_per_secs(rate, per).map(Some)
}

/// Relative distance within which a float counts as the integer next to it.
const INTEGER_TOLERANCE: f64 = 1e-9;
/// How much longer than exact the period may become by rounding up to whole milliseconds.
const MAX_PERIOD_ROUNDING: f64 = 0.01;

fn snap_to_integer(x: f64) -> f64 {
    let nearest = x.round();
    if (x - nearest).abs() <= INTEGER_TOLERANCE * nearest.abs().max(1.0) {
        nearest
    } else {
        x
    }
}

/// `rate` requests per `per` seconds, both positive and fractions allowed, as whole requests per
/// whole milliseconds: a burst of `ceil(rate)` requests refilled at `rate / per` a second, e.g.
/// 0.5 per 1 s → 1 per 2,000 ms, 2.5 per 1 s → 3 per 1,200 ms, 10 per 1 s → 10 per 1,000 ms.
/// A period that is not a whole number of milliseconds is rounded up (a slightly stricter limit,
/// never a looser one); when that would lengthen it by more than 1%, or the numbers are out of
/// range, the rate cannot be represented and is an error.
pub(super) fn rate_per_secs(rate: f64, per: f64) -> Result<RateLimit, String> {
    /// Beyond this, `f64` no longer holds every integer exactly.
    const MAX_EXACT: f64 = 9.0e15;
    if !(rate.is_finite() && per.is_finite() && rate > 0.0 && per > 0.0) {
        return Err(format!(
            "rate {rate} per {per} s is not a usable rate limit"
        ));
    }
    let requests = snap_to_integer(rate).ceil();
    let exact_ms = requests * per * 1000.0 / rate;
    let per_ms = snap_to_integer(exact_ms).ceil();
    if requests > MAX_EXACT || !exact_ms.is_finite() || per_ms > MAX_EXACT {
        return Err(format!("rate {rate} per {per} s is out of range"));
    }
    if (per_ms - exact_ms) / exact_ms > MAX_PERIOD_ROUNDING {
        return Err(format!(
            "rate {rate} per {per} s cannot be represented in whole milliseconds \
             ({requests} requests every {exact_ms} ms)"
        ));
    }
    RateLimit::try_new(requests as u64, per_ms as u64)
}

/// `quota_max` requests per `quota_renewal_rate` seconds: -1 is unlimited, 0 (or absent) none;
/// otherwise both must be whole numbers, the renewal period > 0.
pub(super) fn quota(obj: &Map<String, Value>) -> Result<Option<Quota>, String> {
    const MAX_EXACT: f64 = 9.0e15;
    let max = number(obj, "quota_max")?.unwrap_or(0.0);
    if max == -1.0 {
        return Ok(Some(Quota::Unlimited));
    }
    if max == 0.0 {
        return Ok(None);
    }
    if max < 0.0 || max.fract() != 0.0 || max > MAX_EXACT {
        return Err(format!(
            "quota_max {max} must be -1 (unlimited), 0 (none) or a whole number of requests"
        ));
    }
    let renewal_secs = number(obj, "quota_renewal_rate")?.unwrap_or(0.0);
    if renewal_secs <= 0.0 || renewal_secs.fract() != 0.0 || renewal_secs > MAX_EXACT / 1000.0 {
        return Err(format!(
            "quota_renewal_rate {renewal_secs} must be a whole number of seconds > 0 when quota_max is set"
        ));
    }
    Quota::limited(max as u64, renewal_secs as u64 * 1000).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rate(v: Value) -> Result<Option<RateLimit>, String> {
        rate_limit(v.as_object().unwrap())
    }

    fn limit(requests: u64, per_ms: u64) -> Option<RateLimit> {
        Some(RateLimit::try_new(requests, per_ms).unwrap())
    }

    #[test]
    fn fractional_rates_are_converted_exactly() {
        assert_eq!(rate(json!({"rate": 0.5, "per": 1})), Ok(limit(1, 2000)));
        assert_eq!(rate(json!({"rate": 2.5, "per": 1})), Ok(limit(3, 1200)));
        assert_eq!(rate(json!({"rate": 0.1, "per": 1})), Ok(limit(1, 10_000)));
        assert_eq!(rate(json!({"rate": 1, "per": 0.5})), Ok(limit(1, 500)));
        assert_eq!(
            rate(json!({"rate": 0.3333333333, "per": 1})),
            Ok(limit(1, 3000))
        );
        assert_eq!(rate(json!({"rate": 10, "per": 1})), Ok(limit(10, 1000)));
        assert_eq!(
            rate(json!({"rate": 100, "per": 60})),
            Ok(limit(100, 60_000))
        );
        // Not a whole number of milliseconds: rounded up, so never looser.
        let r = rate(json!({"rate": 1500.5, "per": 1})).unwrap().unwrap();
        assert_eq!((r.requests, r.per_ms), (1501, 1001));
        assert!(!r.at_least_as_permissive_as(&RateLimit::try_new(15005, 10_000).unwrap()));
    }

    #[test]
    fn unlimited_none_and_garbage() {
        assert_eq!(rate(json!({})), Ok(None));
        assert_eq!(rate(json!({"rate": 0, "per": 0})), Ok(None));
        assert_eq!(rate(json!({"rate": -1, "per": -1})), Ok(None));
        for bad in [
            json!({"rate": -2, "per": 1}),
            json!({"rate": 5, "per": 0}),
            json!({"rate": 5, "per": -1}),
            json!({"rate": "10", "per": 1}),
            json!({"rate": 10, "per": "1"}),
            json!({"rate": 1, "per": 0.0004}),
            json!({"rate": 1e300, "per": 1}),
            json!({"rate": 1, "per": 1e300}),
        ] {
            assert!(rate(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn quotas() {
        let q = |v: Value| quota(v.as_object().unwrap());
        assert_eq!(q(json!({"quota_max": -1})), Ok(Some(Quota::Unlimited)));
        assert_eq!(q(json!({"quota_max": 0})), Ok(None));
        assert_eq!(
            q(json!({"quota_max": 100, "quota_renewal_rate": 3600})),
            Ok(Some(Quota::limited(100, 3_600_000).unwrap()))
        );
        for bad in [
            json!({"quota_max": -5, "quota_renewal_rate": 60}),
            json!({"quota_max": 1.5, "quota_renewal_rate": 60}),
            json!({"quota_max": "100", "quota_renewal_rate": 60}),
            json!({"quota_max": 100}),
            json!({"quota_max": 100, "quota_renewal_rate": -60}),
            json!({"quota_max": 100, "quota_renewal_rate": 0.5}),
        ] {
            assert!(q(bad.clone()).is_err(), "{bad}");
        }
    }
}
