//! A product's Markdown documentation as HTML that cannot carry script: raw HTML in the text
//! is shown as text, and links or images with a `javascript:`, `data:` or `vbscript:` target
//! point nowhere.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

pub fn to_html(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    // Browsers ignore ASCII whitespace and control characters inside a scheme.
    let scheme: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take_while(|c| *c != ':' && *c != '/' && *c != '?' && *c != '#')
        .collect::<String>()
        .to_ascii_lowercase();
    let has_scheme = url.contains(':') && !scheme.is_empty();
    if has_scheme && matches!(scheme.as_str(), "javascript" | "data" | "vbscript") {
        CowStr::Borrowed("#")
    } else {
        url
    }
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn raw_html_and_script_links_are_inert() {
        let html = to_html(
            "# Orders\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) ![i](data:text/html,hi) <img src=x onerror=alert(1)>\n\n\
             [ok](https://docs.example/orders) [rel](/products/orders) \
             [t](<java\tscript:alert(1)>) [e](&#106;avascript:alert(1)) [u](JAVASCRIPT:alert(1))",
        );
        assert!(html.contains("<h1>Orders</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.to_ascii_lowercase().contains("javascript:"), "{html}");
        assert!(
            !html.to_ascii_lowercase().contains("java\tscript"),
            "{html}"
        );
        assert!(!html.contains("&#106;avascript"), "{html}");
        assert_eq!(html.matches(r##"href="#""##).count(), 4, "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(
            html.contains(r#"href="https://docs.example/orders""#),
            "{html}"
        );
        assert!(html.contains(r#"href="/products/orders""#), "{html}");
    }
}
