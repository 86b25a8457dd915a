//! Writing HTML: escaping, the page frame (header, navigation, error pages, security
//! headers), the path prefix the console is mounted under ([`Base`]), and the formatting
//! every page shares (times, states, ids in URLs). Pages are strings built with `write!`:
//! every value that comes from the store or the request goes through [`esc`].

use super::error::{ConsoleError, ErrorPage};
use super::{Inner, Shared};
use crate::provider::InstanceState;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::convert::Infallible;
use std::fmt::{self, Display, Write as _};
use std::time::{Duration, UNIX_EPOCH};

/// Text made safe for HTML element content and quoted attribute values.
pub(crate) struct Esc<'a>(&'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Escapes `text` for HTML.
pub(crate) fn esc(text: &str) -> Esc<'_> {
    Esc(text)
}

/// The path the console is mounted under (`""` at the root, `"/ops"` when nested there),
/// so that links and form actions work under any prefix. Taken from the difference
/// between the original request path and the path the console's router sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base(String);

impl Base {
    fn of(parts_uri: &axum::http::Uri, original: Option<&OriginalUri>) -> Self {
        let inner = parts_uri.path();
        let Some(original) = original.map(|o| o.0.path()) else { return Base(String::new()) };
        let prefix = match original.strip_suffix(inner) {
            Some(p) => p,
            // `/ops` nested: the inner router sees `/`.
            None if inner == "/" => original.trim_end_matches('/'),
            None => "",
        };
        Base(prefix.trim_end_matches('/').to_string())
    }
}

impl Base {
    /// The console's root page: the prefix itself (`/ops`, since a nested router does not
    /// answer `/ops/`), or `/` at the root.
    pub(crate) fn root(&self) -> String {
        if self.0.is_empty() { "/".to_string() } else { esc(&self.0).to_string() }
    }
}

impl Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is a path the request already had, so it is safe in an attribute once
        // escaped.
        write!(f, "{}", esc(&self.0))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Base::of(&parts.uri, parts.extensions.get::<OriginalUri>()))
    }
}

/// The navigation entries of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Instances,
    Versions,
    Summary,
    None,
}

/// A whole page: the frame around `body`.
pub(crate) fn page(inner: &Inner, base: &Base, title: &str, current: Nav, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {} console</title>\
         <link rel=\"stylesheet\" href=\"{base}/assets/console.css\"></head><body>\
         <header class=\"top\"><a class=\"brand\" href=\"{root}\">{} console</a><nav>",
        esc(title),
        esc(&inner.title),
        esc(&inner.title),
        root = base.root(),
    );
    for (entry, href, label) in [
        (Nav::Instances, base.root(), "Instances"),
        (Nav::Versions, format!("{base}/versions"), "Versions"),
        (Nav::Summary, format!("{base}/summary"), "Store"),
    ] {
        let class = if entry == current { " class=\"current\"" } else { "" };
        let _ = write!(out, "<a{class} href=\"{href}\">{label}</a>");
    }
    out.push_str("</nav>");
    if inner.read_only {
        out.push_str("<span class=\"badge read-only\" title=\"actions are switched off\">read-only</span>");
    }
    out.push_str("</header><main>");
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// Renders the error a response carries as a page, and sets the headers every response
/// gets: no framing, scripts and styles from this console only, no caching of pages.
pub(crate) async fn finish(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let base = Base::of(request.uri(), request.extensions().get::<OriginalUri>());
    let mut response = next.run(request).await;
    if let Some(ErrorPage(error)) = response.extensions_mut().remove::<ErrorPage>() {
        let status = response.status();
        let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
        response = (status, Html(error_page(&shared, &base, &error))).into_response();
        if let Some(c) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn error_page(inner: &Inner, base: &Base, error: &ConsoleError) -> String {
    let status = error.status();
    let (heading, next) = match error {
        ConsoleError::BadParameter { .. } | ConsoleError::Invalid(_) => {
            ("Bad request", "Correct the value and try again.")
        }
        ConsoleError::NotFound(_) => {
            ("Not found", "It may have been deleted; the instance list shows what exists.")
        }
        ConsoleError::NoSuchPage(_) => ("Not found", "The links above lead to the console's pages."),
        ConsoleError::Conflict(_) => ("Not possible now", "The instance page shows where it stands."),
        ConsoleError::ReadOnly => ("Read-only", "Use the duroxide CLI or a console that allows actions."),
        ConsoleError::Forgery(_) => ("Refused", "Reload the page the form is on and submit it again."),
        ConsoleError::Unauthenticated => ("Sign in", "Sign in and reload."),
        ConsoleError::Forbidden(_) => ("Forbidden", "Ask whoever runs this console for access."),
        ConsoleError::Store(_) => ("Store error", "Check that the store is reachable, then reload."),
        #[allow(unreachable_patterns)] // ConsoleError is non_exhaustive for users, not here.
        _ => ("Error", ""),
    };
    let body = format!(
        "<section class=\"error\" data-status=\"{code}\"><h1>{heading} <small>{code}</small></h1>\
         <p class=\"message\">{}</p><p>{next}</p><p><a href=\"{root}\">Back to the instances</a></p></section>",
        esc(&error.to_string()),
        code = status.as_u16(),
        root = base.root(),
    );
    page(inner, base, heading, Nav::None, &body)
}

/// A time (ms since the epoch) as RFC 3339 in UTC, to the second; `-` for 0 (unknown).
pub(crate) fn time(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A duration in ms, short (`250ms`, `1.5s`, `2m 5s`).
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => humantime::format_duration(Duration::from_secs(ms / 1000)).to_string(),
    }
}

/// At most `max` characters of `text`, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A state as a coloured badge.
pub(crate) fn state_badge(state: InstanceState) -> String {
    let name = state_name(state);
    format!("<span class=\"state state-{name}\">{name}</span>")
}

/// A state's name in URLs and pages (lowercase).
pub(crate) fn state_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Completed => "completed",
        InstanceState::Failed => "failed",
    }
}

/// `text` as one URL path segment (everything but unreserved characters percent-encoded,
/// `/` included, so any instance id is one segment).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The URL of an instance's page.
pub(crate) fn instance_url(base: &Base, instance: &str) -> String {
    format!("{base}/instances/{}", segment(instance))
}

/// A link to an instance's page.
pub(crate) fn instance_link(base: &Base, instance: &str) -> String {
    format!("<a class=\"instance\" href=\"{}\">{}</a>", instance_url(base, instance), esc(instance))
}

/// A query string (without `?`) of these pairs.
pub(crate) fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">O'Neil & co</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
        assert_eq!(esc("plain").to_string(), "plain");
    }

    #[test]
    fn segments_keep_ids_whole() {
        assert_eq!(segment("order-42"), "order-42");
        assert_eq!(segment("a/b c?d#é"), "a%2Fb%20c%3Fd%23%C3%A9");
    }

    #[test]
    fn the_base_is_the_mount_prefix() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        let of = |inner: &str, original: &str| Base::of(&uri(inner), Some(&OriginalUri(uri(original)))).0;
        assert_eq!(of("/instances/x", "/instances/x"), "");
        assert_eq!(of("/instances/x", "/ops/instances/x"), "/ops");
        assert_eq!(of("/", "/ops"), "/ops");
        assert_eq!(of("/", "/ops/"), "/ops");
        assert_eq!(of("/", "/"), "");
        assert_eq!(Base::of(&uri("/x"), None).0, "");
    }

    #[test]
    fn short_forms() {
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(1_500), "1.5s");
        assert_eq!(duration(125_000), "2m 5s");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(time(0), "-");
        assert_eq!(time(1_000), "1970-01-01T00:00:01Z");
    }
}
