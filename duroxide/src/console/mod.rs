//! The web console (feature `console`): an [`axum::Router`] that shows a store's instances
//! to operators and, unless it is read-only, lets them raise events, cancel, terminate and
//! delete. Mount it in your own service under any path prefix, behind your own
//! authentication, or run it standalone with `duroxide console --store URL`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use duroxide::{SqliteProvider, console};
//! use std::sync::Arc;
//! let store = Arc::new(SqliteProvider::new("sqlite:./app.db", None).await?);
//! let app = axum::Router::new().nest("/ops", console::router(store));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Pages (paths relative to where the router is mounted):
//!
//! | Path | Page |
//! |---|---|
//! | `/` | instances, with the management API's filters (query parameters below) and pages |
//! | `/instances/{id}` | one instance: status, versions, custom status, pending activities and timers, children, queued messages, executions and a history timeline (`?execution=N` for an older execution) |
//! | `/instances/{id}/history.json` | the history export ([`Client::export_history_json`](crate::Client::export_history_json)) |
//! | `/versions` | instances per orchestration and duroxide version, and which versions can be retired |
//! | `/summary` | instances per state, queue depths, activities waiting per tag with how many live workers serve each, and the workers (runtimes) using the store |
//! | `POST /instances/{id}/raise`, `cancel`, `terminate`, `delete` | the actions, each after a confirmation page |
//!
//! The instance list takes `state` (repeatable: `pending`, `running`, `completed`,
//! `failed`), `name`, `version`, `parent`, `prefix`, `created_after`, `created_before`,
//! `updated_after`, `updated_before` (a time such as `2026-12-01T00:00:00Z` or
//! `2026-12-01`, or an age such as `7d`), `order` (`newest` or `oldest`), `limit` (1 to 500)
//! and `cursor` (from the "next page" link). A bad parameter gets a 400 page that names
//! it; an unknown instance a 404 page.
//!
//! Guarding it: [`Console::read_only`] removes the actions (they answer 403 and their
//! buttons are not shown), [`Console::authorize`] takes a predicate over each request's
//! head that can refuse with 401 or 403, and [`Console::layer`] wraps the console in any
//! `tower` layer (your session or token middleware). Every action is a POST form carrying
//! a token only pages of this console know, and a request whose `Origin` is another site
//! is refused, so a console behind cookie authentication cannot be driven by another
//! site's page. Pages forbid framing.
//!
//! What does not live here: every read and change goes through [`Client`]'s
//! management calls (the console runs no SQL of its own), and the standalone server (its
//! listening address and warnings) is the CLI's `console` command.
//!
//! Layout: `auth` (the authorization hook and the CSRF check), `error` (the typed errors
//! and their status codes), `params` (query strings and form bodies), `html` (escaping, the
//! page frame, formatting), `list`, `instance`, `reports` (versions and store summary) and
//! `actions` (the pages), `timeline` (the history as an SVG), `assets` (the embedded CSS).

mod actions;
mod assets;
mod auth;
mod error;
mod html;
mod instance;
mod list;
mod params;
mod reports;
mod timeline;

pub use auth::{Access, Denied, basic_auth};
pub use error::ConsoleError;

use crate::{Client, Provider};
use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::{Route, get, post};
use std::convert::Infallible;
use std::sync::Arc;
use tower::{Layer, Service};

/// The console with default options (actions on, no authorization hook): the same as
/// `Console::new(store).into_router()`. Mount it behind your authentication, or use
/// [`Console`] to make it read-only or give it a hook.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn duroxide::Provider>) {
/// let app = axum::Router::new().nest("/ops/duroxide", duroxide::console::router(store));
/// # let _: axum::Router = app;
/// # }
/// ```
pub fn router(store: Arc<dyn Provider>) -> Router {
    Console::new(store).into_router()
}

/// A predicate deciding whether a request may see ([`Access::Read`]) or change
/// ([`Access::Write`]) anything.
type Authorize = Arc<dyn Fn(&axum::http::request::Parts, Access) -> Result<(), Denied> + Send + Sync>;

/// A layer the user gave, applied when the router is built.
type LayerFn = Box<dyn FnOnce(Router) -> Router + Send>;

/// Builds a console router with options.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn duroxide::Provider>) {
/// use duroxide::console::{Access, Console, Denied};
/// let app = Console::new(store)
///     // Only requests your proxy authenticated; only admins may act.
///     .authorize(|request, access| {
///         let role = request.headers.get("x-role").and_then(|v| v.to_str().ok());
///         match (role, access) {
///             (None, _) => Err(Denied::Unauthenticated { challenge: None }),
///             (Some("admin"), _) | (Some(_), Access::Read) => Ok(()),
///             (Some(_), Access::Write) => Err(Denied::Forbidden("only admins may act".into())),
///         }
///     })
///     .into_router();
/// # let _: axum::Router = app;
/// # }
/// ```
pub struct Console {
    store: Arc<dyn Provider>,
    read_only: bool,
    authorize: Option<Authorize>,
    layers: Vec<LayerFn>,
    title: String,
    csrf_token: Option<String>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("read_only", &self.read_only)
            .field("authorize", &self.authorize.is_some())
            .field("layers", &self.layers.len())
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console over `store`: actions on, no authorization hook, title "duroxide".
    pub fn new(store: Arc<dyn Provider>) -> Self {
        Self {
            store,
            read_only: false,
            authorize: None,
            layers: Vec::new(),
            title: "duroxide".into(),
            csrf_token: None,
        }
    }

    /// With `true`, the console only reads: action requests answer 403 and their buttons
    /// are not shown.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Asks `predicate` before serving each request, with what the request would do
    /// (reading a page, or an action). `Err(Denied::Unauthenticated { .. })` answers 401
    /// (with the challenge as `WWW-Authenticate`), `Err(Denied::Forbidden(..))` 403.
    /// [`basic_auth`] is a ready-made predicate.
    pub fn authorize<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&axum::http::request::Parts, Access) -> Result<(), Denied> + Send + Sync + 'static,
    {
        self.authorize = Some(Arc::new(predicate));
        self
    }

    /// Wraps every route of the console in `layer` (for example your session or token
    /// middleware). Layers added later run first; all run before the
    /// [`authorize`](Self::authorize) predicate.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |router: Router| router.layer(layer)));
        self
    }

    /// The name shown in the page titles and the header (default "duroxide").
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The token action forms carry (default: a random one per router). Give every replica
    /// of a service the same secret value when a load balancer may send a form to another
    /// replica than the one that rendered it.
    pub fn csrf_token(mut self, token: impl Into<String>) -> Self {
        self.csrf_token = Some(token.into());
        self
    }

    /// The router. Routes are relative: nest it under any prefix
    /// (`Router::new().nest("/ops", console)`); links and forms follow the prefix.
    pub fn into_router(self) -> Router {
        let shared = Shared(Arc::new(Inner {
            client: Client::new(self.store),
            read_only: self.read_only,
            csrf: self.csrf_token.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            title: self.title,
        }));
        if self.authorize.is_none() && self.layers.is_empty() {
            tracing::debug!(
                "duroxide console built without an authorization hook or layer: mount it behind \
                 your own authentication, or serve it on loopback only"
            );
        }
        let mut router = Router::new()
            .route("/", get(list::page))
            .route("/instances/{id}", get(instance::page))
            .route("/instances/{id}/history.json", get(instance::history_json))
            .route("/instances/{id}/{action}", post(actions::submit))
            .route("/versions", get(reports::versions))
            .route("/summary", get(reports::summary))
            .route("/assets/console.css", get(assets::css))
            .fallback(error::no_such_page)
            .layer(axum::extract::DefaultBodyLimit::max(actions::MAX_FORM_BYTES))
            .layer(axum::middleware::from_fn(auth::check_origin))
            .layer(axum::middleware::from_fn_with_state(self.authorize, auth::authorize))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), html::finish))
            .with_state(shared);
        for layer in self.layers {
            router = layer(router);
        }
        router
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Inner>);

pub(crate) struct Inner {
    /// Every read and change goes through the client's management calls.
    pub(crate) client: Client,
    /// Actions refused and their forms hidden.
    pub(crate) read_only: bool,
    /// The token every action form carries (see `auth::check_csrf`).
    pub(crate) csrf: String,
    /// Shown in titles and the header.
    pub(crate) title: String,
}

impl std::ops::Deref for Shared {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
