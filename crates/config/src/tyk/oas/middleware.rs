//! The `middleware` of a Tyk OAS API: `allow` and `block` operations become endpoint rules;
//! other middleware gets the Classic loader's verdict.

use super::{EXT, Translation, in_effect};
use crate::tyk::endpoints::{self, Middleware};
use crate::tyk::{json_kind, report_unsupported};
use portico_core::config::Problem;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Tyk OAS operation middleware by the Classic `extended_paths` member it stands for.
const OPERATION_MIDDLEWARE: &[(&str, &str)] = &[
    ("ignoreAuthentication", "ignored"),
    ("internal", "internal"),
    ("urlRewrite", "url_rewrites"),
    ("mockResponse", "mock_response"),
    ("virtualEndpoint", "virtual"),
    ("postPlugins", "go_plugin"),
    ("rateLimit", "rate_limit"),
    ("enforceTimeout", "hard_timeouts"),
    ("validateRequest", "validate_request"),
    ("circuitBreaker", "circuit_breakers"),
    ("requestSizeLimit", "size_limits"),
];
const PLUGIN_HOOKS: &[&str] = &[
    "prePlugin",
    "prePlugins",
    "postAuthenticationPlugin",
    "postAuthenticationPlugins",
    "postPlugin",
    "postPlugins",
];
const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Translation<'_> {
    pub(super) fn middleware(&mut self, ext: &Map<String, Value>, problems: &mut Vec<Problem>) {
        let path = format!("{EXT}.middleware.");
        let Some(middleware) = self.object(ext, "middleware", &format!("{EXT}."), problems) else {
            return;
        };
        report_unsupported(
            middleware,
            &[&["global", "operations"]],
            self.location,
            &path,
            problems,
        );
        if let Some(global) = self.object(middleware, "global", &path, problems) {
            self.global(global, &format!("{path}global."), problems);
        }
        if let Some(operations) = self.object(middleware, "operations", &path, problems) {
            self.operations(operations, &format!("{path}operations."), problems);
        }
    }

    fn global(&mut self, global: &Map<String, Value>, path: &str, problems: &mut Vec<Problem>) {
        for (member, value) in global {
            let at = format!("{path}{member}");
            match member.as_str() {
                "ignoreCase" => self.ignore_case = in_effect(value),
                hook if PLUGIN_HOOKS.contains(&hook) && in_effect(value) => {
                    self.error(
                        problems,
                        format!("{at}: plugins may enforce rules, and Portico cannot run them"),
                    );
                }
                "pluginConfig" if value.get("bundle").is_some_and(in_effect) => {
                    self.error(
                        problems,
                        format!(
                            "{at}.bundle: plugins may enforce rules, and Portico cannot run them"
                        ),
                    );
                }
                // Plugins and their settings not in effect say nothing.
                hook if PLUGIN_HOOKS.contains(&hook) || hook == "pluginConfig" => {}
                // Like the Classic version's `global_size_limit`.
                "requestSizeLimit" if in_effect(value) => {
                    problems.push(Middleware::Unenforced.problem(self.location, &at));
                }
                _ if in_effect(value) => {
                    problems.push(Middleware::Unsupported.problem(self.location, &at));
                }
                _ => {}
            }
        }
    }

    /// Operation middleware, by the operation's `operationId` in `paths`: `allow` and `block`
    /// become allow and block rules for that path and method, as Classic white and black
    /// lists do; the rest gets the Classic verdict on the middleware it stands for.
    fn operations(
        &mut self,
        operations: &Map<String, Value>,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        let mut index: HashMap<&str, (&str, String)> = HashMap::new();
        for (route, item) in self
            .doc
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for method in HTTP_METHODS {
                if let Some(id) = item
                    .get(*method)
                    .and_then(|op| op.get("operationId"))
                    .and_then(Value::as_str)
                {
                    index.insert(id, (route.as_str(), method.to_ascii_uppercase()));
                }
            }
        }
        for (id, operation) in operations {
            let at = format!("{path}{id}");
            let Some(operation) = operation.as_object() else {
                self.error(
                    problems,
                    format!("{at} must be an object, not {}", json_kind(operation)),
                );
                continue;
            };
            let Some((route, method)) = index.get(id.as_str()) else {
                if operation.values().any(in_effect) {
                    problems.push(Problem::warning(
                        self.location,
                        format!("{at}: no operation in paths has this operationId, so Tyk applies none of it"),
                    ));
                }
                continue;
            };
            for (member, value) in operation {
                if !in_effect(value) {
                    continue;
                }
                let field = format!("{at}.{member}");
                match member.as_str() {
                    "allow" | "block" => {
                        let block = member == "block";
                        let ignore_case = self.ignore_case
                            || value.get("ignoreCase") == Some(&Value::Bool(true));
                        match endpoints::rule(route, Some(vec![method.clone()]), ignore_case, block)
                        {
                            Ok(rule) if block => self.rules.block.push(rule),
                            Ok(rule) => self.rules.allow.push(rule),
                            Err(e) => self.error(problems, format!("{field}: {e}")),
                        }
                    }
                    "scopeCheck" => self.error(
                        problems,
                        format!("{field}: Tyk refuses tokens without the scopes it names; Portico does not enforce it"),
                    ),
                    other => {
                        let verdict = OPERATION_MIDDLEWARE
                            .iter()
                            .find(|(oas, _)| *oas == other)
                            .map_or(Middleware::Unsupported, |(_, classic)| {
                                endpoints::classify(classic)
                            });
                        problems.push(verdict.problem(self.location, &field));
                    }
                }
            }
        }
    }
}
