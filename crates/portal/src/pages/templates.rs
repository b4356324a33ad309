//! The pages' and emails' templates (minijinja; `.html` auto-escaped, `.txt` not). The defaults are embedded; a folder
//! (`--portal-templates DIR`) may hold files of the same names that replace them. Every
//! template is parsed at start, so a broken override is an error then, not on first view.

use minijinja::Environment;
use std::path::Path;
use std::sync::Arc;

/// The embedded defaults: file name and text.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("signup.html", include_str!("../../templates/signup.html")),
    (
        "catalogue.html",
        include_str!("../../templates/catalogue.html"),
    ),
    ("product.html", include_str!("../../templates/product.html")),
    ("cart.html", include_str!("../../templates/cart.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    ("app.html", include_str!("../../templates/app.html")),
    ("token.html", include_str!("../../templates/token.html")),
    (
        "manage/login.html",
        include_str!("../../templates/manage/login.html"),
    ),
    (
        "manage/queue.html",
        include_str!("../../templates/manage/queue.html"),
    ),
    (
        "manage/developers.html",
        include_str!("../../templates/manage/developers.html"),
    ),
    (
        "manage/apps.html",
        include_str!("../../templates/manage/apps.html"),
    ),
    (
        "manage/app.html",
        include_str!("../../templates/manage/app.html"),
    ),
    (
        "manage/catalogue.html",
        include_str!("../../templates/manage/catalogue.html"),
    ),
    (
        "manage/document.html",
        include_str!("../../templates/manage/document.html"),
    ),
    (
        "manage/provider_test.html",
        include_str!("../../templates/manage/provider_test.html"),
    ),
    (
        "emails/submitted.txt",
        include_str!("../../templates/emails/submitted.txt"),
    ),
    (
        "emails/approved.txt",
        include_str!("../../templates/emails/approved.txt"),
    ),
    (
        "emails/rejected.txt",
        include_str!("../../templates/emails/rejected.txt"),
    ),
    (
        "emails/revoked.txt",
        include_str!("../../templates/emails/revoked.txt"),
    ),
    (
        "manage/outbox.html",
        include_str!("../../templates/manage/outbox.html"),
    ),
];

/// Largest template file read from the override folder.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Self {
        Self::load(None).expect("the embedded templates parse (a test checks)")
    }

    /// The embedded templates, each replaced by a file of the same name in `folder` where
    /// there is one. A file there that is no template's name is an error too (a typo would
    /// otherwise be silently ignored).
    pub fn load(folder: Option<&Path>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        let mut sources: Vec<(String, String)> = DEFAULTS
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        if let Some(folder) = folder {
            for name in overrides_in(folder)? {
                let Some(slot) = sources.iter_mut().find(|(known, _)| *known == name) else {
                    return Err(format!(
                        "{}: {name} is not one of the portal's templates ({})",
                        folder.display(),
                        DEFAULTS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                let path = folder.join(&name);
                slot.1 = read_bounded(&path)?;
            }
        }
        for (name, text) in sources {
            env.add_template_owned(name.clone(), text)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(Self { env: Arc::new(env) })
    }

    pub fn render(&self, name: &str, context: &serde_json::Value) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(context))
            .map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    text.push_str(&format!(": {inner}"));
                    source = inner.source();
                }
                text
            })
    }
}

/// The template files in `folder` (and its `manage/` and `emails/` folders), as template
/// names.
fn overrides_in(folder: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for (sub, prefix) in [
        (folder.to_path_buf(), ""),
        (folder.join("manage"), "manage/"),
        (folder.join("emails"), "emails/"),
    ] {
        if prefix.is_empty() || sub.is_dir() {
            let entries = std::fs::read_dir(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", sub.display()))?;
                let file = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_file() {
                    names.push(format!("{prefix}{file}"));
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_TEMPLATE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "{}: larger than {MAX_TEMPLATE_BYTES} bytes",
            path.display()
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_templates_parse() {
        Templates::load(None).unwrap();
    }

    #[test]
    fn a_file_in_the_folder_replaces_its_template_and_a_stray_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("portico-templates-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("manage")).unwrap();
        std::fs::write(dir.join("error.html"), "custom: {{ message }}").unwrap();
        let templates = Templates::load(Some(&dir)).unwrap();
        let html = templates
            .render("error.html", &serde_json::json!({"message": "<b>x</b>"}))
            .unwrap();
        assert_eq!(html, "custom: &lt;b&gt;x&lt;&#x2f;b&gt;");

        std::fs::write(dir.join("manage/eror.html"), "typo").unwrap();
        let e = Templates::load(Some(&dir)).unwrap_err();
        assert!(e.contains("manage/eror.html is not one of"), "{e}");
        std::fs::write(dir.join("manage/eror.html"), "").unwrap();
        std::fs::remove_file(dir.join("manage/eror.html")).unwrap();

        std::fs::write(dir.join("error.html"), "{% if %}").unwrap();
        let e = Templates::load(Some(&dir)).unwrap_err();
        assert!(e.starts_with("template error.html:"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
