//! The one rule for the names of resources (APIs, policies, issuers, and every kind after
//! them), wherever a name is checked: in documents, in the admin API, in the store.

/// The longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Why `name` cannot name a resource, or `None` when it can: 1 to [`MAX_NAME_BYTES`] bytes,
/// not only spaces, no control characters (so a name is always safe to print and log).
pub fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        Some(format!(
            "must be 1 to {MAX_NAME_BYTES} bytes, not blank, without control characters"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "payments",
            "a",
            "Payments API v2",
            "zahlungsverkehr-ü",
            &"x".repeat(256),
        ] {
            assert_eq!(name_problem(good), None, "{good:?}");
        }
        for bad in ["", "  ", "a\nb", "tab\there", "nul\0", &"x".repeat(257)] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
