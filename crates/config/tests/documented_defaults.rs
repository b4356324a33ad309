//! The default column of docs/configuration.md states what the code does.

use portico_config::defaults::documented_defaults;
use std::collections::HashMap;

/// `(section, field) -> default` from the reference's tables: the section is the last heading
/// (its backticked name, or its text), the field and default the first two backticked cells.
fn documented() -> HashMap<(String, String), String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let text = std::fs::read_to_string(path).expect("docs/configuration.md");
    let mut section = String::new();
    let mut rows = HashMap::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix('#') {
            let heading = heading.trim_start_matches('#').trim();
            section = heading.trim_matches('`').to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let field = cells[1].trim_matches('`').to_string();
        let default = cells[2].trim_matches('`').to_string();
        rows.insert((section.clone(), field), default);
    }
    rows
}

#[test]
fn every_default_in_the_reference_is_the_codes() {
    let documented = documented();
    let mut wrong = Vec::new();
    for (section, field, default) in documented_defaults() {
        match documented.get(&(section.to_string(), field.to_string())) {
            None => wrong.push(format!("{section}: `{field}` is not in the reference")),
            Some(doc) if *doc != default => wrong.push(format!(
                "{section}: `{field}` is documented as {doc:?}, the code says {default:?}"
            )),
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/configuration.md drifted:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_numeric_default_in_the_reference_is_checked() {
    let checked: Vec<(String, String)> = documented_defaults()
        .into_iter()
        .map(|(s, f, _)| (s.to_string(), f.to_string()))
        .collect();
    let unchecked: Vec<String> = documented()
        .into_iter()
        .filter(|(_, default)| default.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .filter(|(key, _)| !checked.contains(key))
        .map(|((s, f), d)| format!("{s}: `{f}` = {d}"))
        .collect();
    assert!(
        unchecked.is_empty(),
        "add these to portico_config::defaults::documented_defaults:\n{}",
        unchecked.join("\n")
    );
}
