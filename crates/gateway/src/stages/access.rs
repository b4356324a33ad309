//! Phase 4, access: whether the caller's policies grant this API, method and path, and the
//! limits that then apply.

use crate::admission::Admission;
use crate::error::{Denied, EdgeError, EdgeErrorKind};
use crate::pipeline::ApiRuntime;
use http::Method;
use portico_core::merge::{AccessDecision, decide};
use portico_limits::{Limits, counter_key};

/// `None`: authentication only, or nothing to count.
pub fn granted_limits(
    api: &ApiRuntime,
    admission: &Admission,
    method: &Method,
    rest: &str,
) -> Result<Option<Limits>, EdgeError> {
    if api.spec.policies.is_authentication_only() {
        return Ok(None);
    }
    let denied = |why| Err(EdgeErrorKind::InsufficientScope(why).into());
    if admission.policies.is_empty() {
        return denied(Denied::NoPolicy);
    }
    let grant = match decide(&admission.policies, &api.spec.id, method.as_str(), rest) {
        AccessDecision::Allowed(grant) => grant,
        AccessDecision::ApiNotGranted => return denied(Denied::ApiNotGranted),
        AccessDecision::MethodOrPathDenied => {
            return denied(Denied::MethodOrPathNotGranted);
        }
    };
    let limits = Limits {
        rate: grant.rate.map(|(id, r)| (counter_key(&id), r)),
        quota: grant.quota.map(|(id, q)| (counter_key(&id), q)),
    };
    Ok((!limits.is_empty()).then_some(limits))
}
