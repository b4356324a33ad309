//! An app's usage chart: its client's requests per minute over the last hour, as the gateway
//! nodes counted them, successes apart from rejections (401, 403, 429) and other errors.
//! Server-rendered SVG: no script.

use crate::api::{PortalState, catalogue_of};
use portico_store::usage::UsageMinute;
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes the chart shows.
pub const MINUTES: u64 = 60;

const WIDTH: u64 = 720;
const HEIGHT: u64 = 180;
const LEFT: u64 = 44;
const BOTTOM: u64 = 24;

/// The chart and totals of `app_id`'s client (`None`: no client registered).
pub async fn of_app(state: &PortalState, app_id: &str) -> Option<Value> {
    let client = state.store.client_of(app_id).await.ok()??;
    let catalogue = catalogue_of(&state.store).await.ok()?;
    let issuer = catalogue.providers.get(&client.provider)?.issuer().ok()?;
    let now_minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60);
    let first = now_minute.saturating_sub(MINUTES - 1);
    let minutes = match state
        .store
        .usage_since(&issuer, &client.client_id, first)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "portal: reading usage");
            return Some(json!({ "unavailable": true }));
        }
    };
    let total = |f: fn(&UsageMinute) -> u64| minutes.iter().map(f).sum::<u64>();
    Some(json!({
        "svg": svg(&minutes, first, now_minute),
        "ok": total(|m| m.ok),
        "rejected": total(|m| m.rejected),
        "failed": total(|m| m.failed),
    }))
}

/// Stacked bars, one per minute from `first` to `last`.
pub fn svg(minutes: &[UsageMinute], first: u64, last: u64) -> String {
    let slots = last.saturating_sub(first) + 1;
    let peak = minutes
        .iter()
        .map(|m| m.ok + m.rejected + m.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - BOTTOM - 8;
    let bar = plot_w as f64 / slots as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="usage-title" xmlns="http://www.w3.org/2000/svg"><title id="usage-title">Requests per minute over the last {slots} minutes</title>"##
    );
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#c4ccd6"/><line x1="{LEFT}" y1="8" x2="{}" y2="8" stroke="#eef1f5"/><text x="{}" y="14" font-size="11" text-anchor="end" fill="#5b6675">{peak}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#5b6675">0</text>"##,
        WIDTH - 8,
        WIDTH - 8,
        LEFT - 6,
        LEFT - 6,
        base
    );
    for m in minutes {
        if m.minute < first || m.minute > last {
            continue;
        }
        let x = LEFT as f64 + (m.minute - first) as f64 * bar + 1.0;
        let w = (bar - 2.0).max(1.0);
        let mut y = base as f64;
        for (count, colour, label) in [
            (m.ok, "#1f7a4d", "succeeded"),
            (m.rejected, "#b42318", "rejected"),
            (m.failed, "#98a2b3", "failed"),
        ] {
            if count == 0 {
                continue;
            }
            let h = count as f64 / peak as f64 * plot_h as f64;
            y -= h;
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"><title>{count} {label}</title></rect>"##
            );
        }
    }
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="{}" font-size="11" fill="#5b6675">{slots} min ago</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#5b6675">now</text></svg>"##,
        HEIGHT - 6,
        WIDTH - 8,
        HEIGHT - 6
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_by_outcome_and_scale_to_the_peak() {
        let minutes = [
            UsageMinute {
                minute: 100,
                ok: 3,
                rejected: 1,
                failed: 0,
            },
            UsageMinute {
                minute: 159,
                ok: 0,
                rejected: 0,
                failed: 2,
            },
        ];
        let svg = svg(&minutes, 100, 159);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>3 succeeded</title>"));
        assert!(svg.contains("<title>1 rejected</title>"));
        assert!(svg.contains("<title>2 failed</title>"));
        assert!(svg.contains(">4</text>"), "the peak labels the axis");
        assert!(
            !svg.contains("style="),
            "the pages' CSP allows no inline style"
        );
    }
}
