//! Who may use the console: the authorization hook ([`Access`], [`Denied`], the
//! [`basic_auth`] predicate) and the defence against cross-site requests (every action
//! form carries the console's token; a request whose `Origin` names another site is
//! refused). Users' own `tower` layers are applied in `Console::into_router`, not here.

use super::Authorize;
use super::error::ConsoleError;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a request would do, as the [`Console::authorize`](super::Console::authorize)
/// predicate is told. Not `non_exhaustive`: every request either only reads or may change
/// something, so predicates can match both without a catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading a page (GET or HEAD).
    Read,
    /// An action (raise, cancel, terminate, delete), or any other method.
    Write,
}

/// Why the authorization predicate refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// The request says nothing about who sent it, or not convincingly: 401, with
    /// `challenge` as the `WWW-Authenticate` header when given (for example
    /// `Basic realm="duroxide console"`, which makes a browser ask for a password).
    Unauthenticated {
        /// The `WWW-Authenticate` value.
        challenge: Option<String>,
    },
    /// The sender is known and may not do this: 403, with the reason shown on the page.
    Forbidden(String),
}

/// A predicate for [`Console::authorize`](super::Console::authorize) that accepts HTTP
/// Basic credentials `user` and `password` (browsers ask for them), for every page and
/// action. Use it over HTTPS, or on loopback.
///
/// ```no_run
/// # fn demo(store: std::sync::Arc<dyn duroxide::Provider>) {
/// use duroxide::console::{Console, basic_auth};
/// let password = std::env::var("CONSOLE_PASSWORD").expect("set CONSOLE_PASSWORD");
/// let app = Console::new(store).authorize(basic_auth("ops", &password)).into_router();
/// # let _: axum::Router = app;
/// # }
/// ```
pub fn basic_auth(
    user: &str,
    password: &str,
) -> impl Fn(&axum::http::request::Parts, Access) -> Result<(), Denied> + Send + Sync + 'static {
    let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
    move |request, _access| {
        let given = request.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
        if same_bytes(given, expected.as_bytes()) {
            Ok(())
        } else {
            Err(Denied::Unauthenticated { challenge: Some("Basic realm=\"duroxide console\"".into()) })
        }
    }
}

/// Runs the user's predicate, if any, before the request reaches a page.
pub(crate) async fn authorize(
    State(predicate): State<Option<Authorize>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(predicate) = predicate else { return next.run(request).await };
    let access =
        if matches!(*request.method(), Method::GET | Method::HEAD) { Access::Read } else { Access::Write };
    let (parts, body) = request.into_parts();
    match predicate(&parts, access) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(Denied::Unauthenticated { challenge }) => {
            let mut response = ConsoleError::Unauthenticated.into_response();
            if let Some(value) = challenge.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Err(Denied::Forbidden(reason)) => ConsoleError::Forbidden(reason).into_response(),
    }
}

/// Refuses a state-changing request that a browser says came from another site: its
/// `Origin` names another host than the one it was sent to (`Host`, or `X-Forwarded-Host`
/// behind a proxy), or `Sec-Fetch-Site` says
/// `cross-site`. The token check happens where the form is read (`actions`), since the
/// token is in the body.
pub(crate) async fn check_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site") {
        return ConsoleError::Forgery("the request came from another site".into()).into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
        // Behind a reverse proxy the browser's host is in X-Forwarded-Host. A page of
        // another site cannot set that header on a form post, so trusting it is safe.
        let ours = [header::HOST.as_str(), "x-forwarded-host"]
            .into_iter()
            .filter_map(|name| headers.get(name).and_then(|h| h.to_str().ok()))
            .any(|host| Some(host) == origin_host);
        // `Origin: null` (sandboxed frames, some redirects) names no site: refused too.
        if !ours {
            return ConsoleError::Forgery("the request came from another site".into()).into_response();
        }
    }
    next.run(request).await
}

/// Whether a form's token is the console's, compared in time independent of where they
/// differ.
pub(crate) fn token_matches(given: &str, expected: &str) -> bool {
    same_bytes(given.as_bytes(), expected.as_bytes())
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648), for the expected Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", "abc"));
    }
}
