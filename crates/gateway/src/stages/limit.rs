//! Phase 5, limit: the identity session's rate limit, then its quota. A rejected request
//! consumes nothing. A limiter that cannot decide (Redis away under `fail_closed`) is a 503
//! with `Retry-After`.

use crate::error::{EdgeError, EdgeErrorKind};
use crate::flow::RequestContext;
use crate::metrics::{GatewayMetrics, RejectionLabels};
use crate::pipeline::ApiRuntime;
use portico_core::SessionId;
use portico_limits::{Limiter, Limits, Verdict};

/// How long a client is asked to wait when the limiter is unavailable.
const LIMITER_RETRY_AFTER_SECS: u64 = 1;

pub async fn check(
    limiter: &impl Limiter,
    api: &ApiRuntime,
    session: SessionId,
    limits: &Limits,
    ctx: &mut RequestContext<'_>,
    metrics: &GatewayMetrics,
) -> Result<(), EdgeError> {
    let decision = limiter.check(session, limits).await.map_err(|e| {
        EdgeError::with_cause(
            EdgeErrorKind::LimiterUnavailable {
                retry_after_secs: LIMITER_RETRY_AFTER_SECS,
            },
            e,
        )
    })?;
    ctx.decision = Some(decision);
    let (retry_after_ms, quota) = match decision.verdict {
        Verdict::Allowed => return Ok(()),
        Verdict::RateLimited { retry_after_ms } => (retry_after_ms, false),
        Verdict::QuotaExceeded { retry_after_ms } => (retry_after_ms, true),
    };
    metrics
        .limit_rejections
        .get_or_create(&RejectionLabels {
            api: api.metrics.labels.api.clone(),
            limit: if quota { "quota" } else { "rate" },
        })
        .inc();
    Err(EdgeErrorKind::TooManyRequests {
        retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
        quota,
    }
    .into())
}
