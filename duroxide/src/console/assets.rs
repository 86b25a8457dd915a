//! The console's one stylesheet, embedded in the binary at build time: nothing is fetched
//! from elsewhere, and nothing needs building at install time.

use axum::http::header;
use axum::response::IntoResponse;

/// `assets/console.css`.
const CSS: &str = include_str!("assets/console.css");

/// `GET /assets/console.css`.
pub(crate) async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            // The file changes only with the binary; an hour keeps reloads cheap.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
