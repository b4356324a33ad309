//! What `portico apply --dry-run` prints for each document: its summary line, then a unified
//! diff of the stored spec's YAML against the file's. Both sides pass through the same
//! redaction as everything the admin API returns ([`portico_admin::redact`]), so a secret
//! in the file is never printed; a change of secret fields only is said in words.

use portico_admin::apply::{ApplyOutcome, ApplyResult};
use portico_admin::redact::redact_secret_fields;
use serde_json::{Map, Value};
use similar::TextDiff;

/// Lines of context around each change.
const CONTEXT_LINES: usize = 3;

/// The diff of one result; `new_spec` is the file's spec for the document (none for a
/// pruned resource). Empty for `unchanged`, whose summary line says it all.
pub fn render(result: &ApplyResult, new_spec: Option<&Value>) -> String {
    let label = format!("{}/{}", result.kind, result.name);
    let redacted = |spec: &Value| {
        let mut spec = spec.clone();
        redact_secret_fields(&result.kind, &mut spec);
        yaml(&sorted(spec))
    };
    let (old, new, old_header, new_header) = match result.outcome {
        ApplyOutcome::Unchanged => return String::new(),
        ApplyOutcome::Created => (
            String::new(),
            new_spec.map(redacted).unwrap_or_default(),
            format!("{label} (not stored)"),
            format!("{label} (file)"),
        ),
        ApplyOutcome::Updated => (
            result.current.as_ref().map(redacted).unwrap_or_default(),
            new_spec.map(redacted).unwrap_or_default(),
            format!("{label} version {} (stored)", result.version - 1),
            format!("{label} (file)"),
        ),
        ApplyOutcome::Deleted => (
            result.current.as_ref().map(redacted).unwrap_or_default(),
            String::new(),
            format!("{label} version {} (stored)", result.version),
            format!("{label} (deleted)"),
        ),
    };
    if matches!(
        result.outcome,
        ApplyOutcome::Updated | ApplyOutcome::Deleted
    ) && result.current.is_none()
    {
        return "  (the server did not send the stored spec; no diff)\n".to_string();
    }
    if old == new {
        return "  (only secret fields change)\n".to_string();
    }
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(&old_header, &new_header)
        .to_string()
}

/// YAML of a spec; a spec that cannot be written as YAML (it always can: it came from JSON)
/// is shown as JSON rather than not at all.
fn yaml(spec: &Value) -> String {
    serde_saphyr::to_string(spec).unwrap_or_else(|_| format!("{spec:#}\n"))
}

/// Keys in order at every depth, so that both sides list them alike whatever order the file
/// and the store keep.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(outcome: ApplyOutcome, version: i64, current: Option<Value>) -> ApplyResult {
        ApplyResult {
            kind: "Policy".into(),
            name: "gold".into(),
            outcome,
            version,
            current,
        }
    }

    #[test]
    fn an_update_shows_the_changed_field_and_never_a_secret() {
        let stored =
            json!({"rate_limit": {"requests": 10, "per_secs": 60}, "client_secret": "<redacted>"});
        let file =
            json!({"rate_limit": {"per_secs": 60, "requests": 20}, "client_secret": "s3cr3t"});
        let diff = render(&result(ApplyOutcome::Updated, 4, Some(stored)), Some(&file));
        assert!(
            diff.contains("--- Policy/gold version 3 (stored)"),
            "{diff}"
        );
        assert!(diff.contains("-  requests: 10"), "{diff}");
        assert!(diff.contains("+  requests: 20"), "{diff}");
        assert!(
            !diff.contains("-  per_secs") && !diff.contains("+  per_secs"),
            "key order is not a change: {diff}"
        );
        assert!(!diff.contains("s3cr3t"), "{diff}");
    }

    #[test]
    fn a_change_of_secrets_only_is_said_in_words() {
        let stored = json!({"client_secret": "<redacted>"});
        let file = json!({"client_secret": "new"});
        let diff = render(&result(ApplyOutcome::Updated, 2, Some(stored)), Some(&file));
        assert_eq!(diff, "  (only secret fields change)\n");
    }

    #[test]
    fn created_documents_are_all_plus_deleted_all_minus_unchanged_nothing() {
        let spec = json!({"apis": {"orders": {}}});
        let created = render(&result(ApplyOutcome::Created, 1, None), Some(&spec));
        assert!(created.contains("+apis:"), "{created}");
        assert!(
            !created
                .lines()
                .any(|l| l.starts_with('-') && !l.starts_with("---"))
        );
        let deleted = render(&result(ApplyOutcome::Deleted, 3, Some(spec.clone())), None);
        assert!(deleted.contains("-apis:"), "{deleted}");
        assert!(
            !deleted
                .lines()
                .any(|l| l.starts_with('+') && !l.starts_with("+++"))
        );
        assert_eq!(
            render(&result(ApplyOutcome::Unchanged, 3, None), Some(&spec)),
            ""
        );
    }
}
