//! The web console over HTTP, without a browser: every route answered through
//! `tower::ServiceExt::oneshot` on a store a real runtime populated (see
//! `console_support`), the actions' confirmation step and their effect on the store,
//! read-only mode, the authorization hook and user layers, the CSRF defences, mounting
//! under a prefix, and the 400 / 404 pages.

mod console_support;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use console_support::{activities, orchestrations, populate};
use duroxide::console::{self, Access, Console, Denied};
use duroxide::prelude::*;
use duroxide::provider::{InstanceState, OrchestratorMessage};
use std::sync::Arc;
use tower::ServiceExt;

/// A store populated by a runtime that has shut down since (so nothing changes under the
/// test but what the test does).
async fn store() -> Arc<dyn duroxide::Provider> {
    let store: Arc<dyn duroxide::Provider> =
        Arc::new(SqliteProvider::new("sqlite::memory:", None).await.expect("open the store"));
    let rt = Runtime::start_with_store(store.clone(), activities(), orchestrations()).await;
    populate(&Client::new(store.clone())).await;
    rt.shutdown(None).await;
    store
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
    fn assert(self, status: StatusCode, needle: &str) -> Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert!(self.body.contains(needle), "expected {needle:?} in: {}", self.body);
        self
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).header(header::HOST, "console.test").body(Body::empty()).unwrap()).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn post_request(uri: &str) -> axum::http::request::Builder {
    Request::post(uri)
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
}

async fn post(app: &Router, uri: &str, pairs: &[(&str, &str)]) -> Reply {
    send(app, post_request(uri).body(Body::from(form(pairs))).unwrap()).await
}

/// The CSRF token the instance page's forms carry.
async fn token(app: &Router, prefix: &str) -> String {
    let page =
        get(app, &format!("{prefix}/instances/waiting-1")).await.assert(StatusCode::OK, "name=\"csrf\"");
    let start =
        page.body.find("name=\"csrf\" value=\"").expect("a token field") + "name=\"csrf\" value=\"".len();
    page.body[start..].split('"').next().unwrap_or_default().to_string()
}

/// The instance ids listed on a list page, in order.
fn listed(body: &str) -> Vec<String> {
    body.split("<tr data-instance=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default().to_string())
        .collect()
}

/// The messages queued for `id`, but for timers (which wait in the queue until they fire).
async fn queued(store: &Arc<dyn duroxide::Provider>, id: &str) -> Vec<OrchestratorMessage> {
    let client = Client::new(store.clone());
    let messages = client.describe_instance(id).await.unwrap().queued_messages.into_iter().map(|m| m.message);
    messages.filter(|m| !matches!(m, OrchestratorMessage::TimerFired { .. })).collect()
}

async fn state(store: &Arc<dyn duroxide::Provider>, id: &str) -> Option<InstanceState> {
    Client::new(store.clone()).get_instance_info(id).await.unwrap().map(|r| r.state)
}

#[tokio::test]
async fn every_page_renders_what_the_store_holds() {
    let app = console::router(store().await);

    let list = get(&app, "/").await.assert(StatusCode::OK, "<h1>Instances</h1>");
    assert_eq!(list.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let mut ids = listed(&list.body);
    ids.sort();
    let mut expected: Vec<String> = console_support::INSTANCES.iter().map(|(id, _)| id.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(list.body.contains("<strong>8</strong> instances match"), "{}", list.body);

    let waiting = get(&app, "/instances/waiting-1").await.assert(StatusCode::OK, "waiting for approval");
    for needle in [
        "<svg",
        "class=\"bar activity completed\"", // Prepare
        "class=\"bar timer planned\"",      // the one-hour deadline
        "class=\"mark started\"",
        "class=\"mark wait\"",
        "id=\"pending-timers\"><h2>Pending timers (1)",
        "Approval",
        "1.0.0",
        "id=\"raise-form\"",
        "ActivityScheduled",
    ] {
        assert!(waiting.body.contains(needle), "{needle:?} missing from the instance page");
    }
    // Durable values, sorted by key and escaped.
    let values = waiting.body.split("<section id=\"values\">").nth(1).expect("a values section");
    let values = values.split("</section>").next().unwrap_or_default();
    let rows: Vec<&str> = values.split("<tr><td>").skip(1).collect();
    assert_eq!(rows.len(), 2, "{values}");
    assert!(
        rows[0].starts_with("<code>&lt;stage&gt;</code></td><td><code>review &amp; sign</code>"),
        "{values}"
    );
    assert!(rows[1].starts_with("<code>order</code></td><td><code>order-1</code>"), "{values}");
    let done = get(&app, "/instances/done-1").await.assert(StatusCode::OK, "Hello, Ada!");
    assert!(!done.body.contains("id=\"values\""), "an instance without values shows no section");
    get(&app, "/instances/failed-1").await.assert(StatusCode::OK, "the warehouse is on fire");
    get(&app, "/instances/failed-1").await.assert(StatusCode::OK, "class=\"bar activity failed\"");
    let holder = get(&app, "/instances/holder-1").await.assert(StatusCode::OK, "Sub-orchestrations (1)");
    assert!(holder.body.contains("href=\"/instances/holder-1-child\""));
    assert!(holder.body.contains("class=\"bar sub-orchestration open\""));
    get(&app, "/instances/holder-1-child").await.assert(StatusCode::OK, "href=\"/instances/holder-1\"");
    get(&app, "/instances/done-1?execution=1").await.assert(StatusCode::OK, "Hello, Ada!");
    get(&app, "/instances/pending-1").await.assert(StatusCode::OK, "No history yet");

    let json =
        get(&app, "/instances/done-1/history.json").await.assert(StatusCode::OK, "OrchestrationStarted");
    assert_eq!(json.headers[header::CONTENT_TYPE], "application/json");
    duroxide::testing::replay_history_json(&orchestrations(), "done-1", 1, &json.body)
        .expect("the export is a replayable history");

    let versions = get(&app, "/versions").await.assert(StatusCode::OK, "<h1>Versions</h1>");
    let retirable = versions.body.split("id=\"retirable\"").nth(1).unwrap_or_default();
    let retirable = retirable.split("</div>").next().unwrap_or_default();
    assert!(retirable.contains("Greet 1.0.0") && retirable.contains("Greet 2.0.0"), "{retirable}");
    assert!(retirable.contains("Fail 1.0.0") && !retirable.contains("Approval"), "{retirable}");
    let in_use = versions.body.split("id=\"in-use\"").nth(1).unwrap_or_default();
    assert!(
        in_use.split("</div>").next().unwrap_or_default().contains("Approval 1.0.0</code>: 3 unfinished")
    );
    assert!(versions.body.contains("<code>Unregistered</code>: 1 pending"));
    get(&app, "/versions?name=Greet").await.assert(StatusCode::OK, "Orchestration <code>Greet</code> only");

    let summary = get(&app, "/summary").await.assert(StatusCode::OK, "<h2>Queues</h2>");
    assert!(summary.body.contains("<a href=\"/?state=running\">4</a>"), "{}", summary.body);
    assert!(summary.body.contains("<td>all</td><td>8</td>"));

    let css = get(&app, "/assets/console.css").await.assert(StatusCode::OK, "svg.timeline");
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test]
async fn pages_forbid_framing_and_foreign_scripts() {
    let app = console::router(store().await);
    for uri in ["/", "/instances/waiting-1", "/nowhere"] {
        let r = get(&app, uri).await;
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{uri}: {csp}");
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(!r.body.contains("<script"), "{uri} has a script");
        assert!(
            !r.body.contains("http://") && !r.body.contains("https://"),
            "{uri} loads something from elsewhere"
        );
    }
}

#[tokio::test]
async fn the_list_filters_and_pages() {
    let app = console::router(store().await);
    assert_eq!(listed(&get(&app, "/?state=failed").await.body), ["failed-1"]);
    let mut done = listed(&get(&app, "/?prefix=done-").await.body);
    done.sort();
    assert_eq!(done, ["done-1", "done-2"]);
    assert_eq!(listed(&get(&app, "/?name=Greet&version=1.0.0").await.body), ["done-1"]);
    assert_eq!(listed(&get(&app, "/?parent=holder-1").await.body), ["holder-1-child"]);
    let mut running = listed(&get(&app, "/?state=running,pending&order=oldest").await.body);
    running.sort();
    assert_eq!(running, ["holder-1", "holder-1-child", "pending-1", "waiting-1", "waiting-2"]);
    assert!(listed(&get(&app, "/?created_after=1d").await.body).len() == 8);
    assert!(listed(&get(&app, "/?created_before=2000-01-01").await.body).is_empty());
    // Empty fields, as a submitted form sends them, filter nothing.
    assert_eq!(
        listed(&get(&app, "/?name=&version=&prefix=&created_after=&order=newest").await.body).len(),
        8
    );
    // The form shows what was asked.
    let page = get(&app, "/?state=failed&prefix=fa").await;
    assert!(
        page.body.contains("value=\"failed\" checked") && page.body.contains("name=\"prefix\" value=\"fa\"")
    );

    // Pages of three, followed by their "next page" links, list everything once.
    let mut seen = Vec::new();
    let mut uri = "/?limit=3".to_string();
    for _ in 0..10 {
        let page = get(&app, &uri).await.assert(StatusCode::OK, "Instances");
        let ids = listed(&page.body);
        assert!(ids.len() <= 3);
        seen.extend(ids);
        match page.body.split("id=\"next-page\" href=\"").nth(1) {
            Some(rest) => uri = rest.split('"').next().unwrap().replace("&amp;", "&"),
            None => break,
        }
    }
    let mut expected: Vec<String> = console_support::INSTANCES.iter().map(|(id, _)| id.to_string()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bad_parameters_get_a_400_page_that_names_them() {
    let app = console::router(store().await);
    for (uri, needle) in [
        ("/?state=sleeping", "bad parameter &#39;state&#39;: &#39;sleeping&#39; is not a state"),
        ("/?limit=0", "bad parameter &#39;limit&#39;: &#39;0&#39; is not a whole number from 1 to 500"),
        ("/?limit=many", "&#39;limit&#39;"),
        ("/?order=sideways", "expected newest or oldest"),
        ("/?created_after=yesterday", "bad parameter &#39;created_after&#39;"),
        ("/?updated_before=2026-13-45", "not a valid date and time"),
        ("/?colour=red", "bad parameter &#39;colour&#39;: unknown parameter; this page takes state, name"),
        ("/?cursor=garbage", "malformed cursor"),
        ("/?name=a&name=b", "given more than once"),
        ("/instances/done-1?execution=zero", "bad parameter &#39;execution&#39;"),
        ("/instances/done-1?done=explode", "bad parameter &#39;done&#39;"),
        ("/instances/done-1/history.json?execution=0", "bad parameter &#39;execution&#39;"),
        ("/versions?state=running", "bad parameter &#39;state&#39;"),
        ("/summary?x=1", "bad parameter &#39;x&#39;"),
    ] {
        let r = get(&app, uri).await.assert(StatusCode::BAD_REQUEST, needle);
        assert!(r.body.contains("<h1>Bad request <small>400</small></h1>"), "{uri}");
    }
}

#[tokio::test]
async fn unknown_instances_and_pages_get_a_404_page() {
    let app = console::router(store().await);
    get(&app, "/instances/nope").await.assert(StatusCode::NOT_FOUND, "instance &#39;nope&#39; not found");
    get(&app, "/instances/done-1?execution=9").await.assert(StatusCode::NOT_FOUND, "execution 9 of instance");
    get(&app, "/instances/nope/history.json").await.assert(StatusCode::NOT_FOUND, "nope");
    get(&app, "/nowhere").await.assert(StatusCode::NOT_FOUND, "no page at /nowhere");
    let token = token(&app, "").await;
    post(&app, "/instances/waiting-1/explode", &[("csrf", &token)])
        .await
        .assert(StatusCode::NOT_FOUND, "no page at");
    post(&app, "/instances/nope/cancel", &[("csrf", &token)]).await.assert(StatusCode::NOT_FOUND, "nope");
}

#[tokio::test]
async fn ids_that_need_escaping_have_working_links() {
    let store = store().await;
    let client = Client::new(store.clone());
    client.start_orchestration("tenant/a b?<x>", "Unregistered", "").await.unwrap();
    let app = console::router(store);
    let list = get(&app, "/?prefix=tenant").await.assert(StatusCode::OK, "tenant/a b?&lt;x&gt;");
    assert!(list.body.contains("href=\"/instances/tenant%2Fa%20b%3F%3Cx%3E\""), "{}", list.body);
    get(&app, "/instances/tenant%2Fa%20b%3F%3Cx%3E").await.assert(StatusCode::OK, "tenant/a b?&lt;x&gt;");
}

#[tokio::test]
async fn actions_ask_first_then_act() {
    let store = store().await;
    let app = console::router(store.clone());
    let token = token(&app, "").await;

    // Raise: the first post only asks.
    let ask = post(
        &app,
        "/instances/waiting-1/raise",
        &[("csrf", &token), ("event", "Approve"), ("data", "\"yes\"")],
    )
    .await
    .assert(StatusCode::OK, "Raise event <code>Approve</code> for instance <code>waiting-1</code>?");
    assert!(
        ask.body.contains("name=\"confirm\" value=\"yes\"") && ask.body.contains("value=\"&quot;yes&quot;\"")
    );
    assert!(queued(&store, "waiting-1").await.is_empty(), "asking changed nothing");
    let done = post(
        &app,
        "/instances/waiting-1/raise",
        &[("csrf", &token), ("confirm", "yes"), ("event", "Approve"), ("data", "\"yes\"")],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/instances/waiting-1?done=raise");
    assert!(matches!(
        queued(&store, "waiting-1").await.as_slice(),
        [OrchestratorMessage::ExternalRaised { name, data }] if name == "Approve" && data == "\"yes\""
    ));
    get(&app, done.location()).await.assert(StatusCode::OK, "Event raised");

    // Cancel.
    post(&app, "/instances/waiting-2/cancel", &[("csrf", &token), ("reason", "wrong order")])
        .await
        .assert(StatusCode::OK, "Cancel instance <code>waiting-2</code>?");
    let done = post(
        &app,
        "/instances/waiting-2/cancel",
        &[("csrf", &token), ("confirm", "yes"), ("reason", "wrong order")],
    )
    .await;
    assert_eq!(done.location(), "/instances/waiting-2?done=cancel");
    assert!(matches!(
        queued(&store, "waiting-2").await.as_slice(),
        [OrchestratorMessage::CancelRequested { reason }] if reason == "wrong order"
    ));

    // Terminate takes the child with it.
    let done = post(&app, "/instances/holder-1/terminate", &[("csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(done.location(), "/instances/holder-1?done=terminate");
    assert_eq!(state(&store, "holder-1").await, Some(InstanceState::Failed));
    assert_eq!(state(&store, "holder-1-child").await, Some(InstanceState::Failed));
    get(&app, "/instances/holder-1").await.assert(StatusCode::OK, "terminated from the console");
    // A finished instance has no raise, cancel or terminate forms, and refuses them.
    let page = get(&app, "/instances/holder-1").await;
    assert!(!page.body.contains("id=\"raise-form\"") && page.body.contains("id=\"delete-form\""));
    post(&app, "/instances/holder-1/raise", &[("csrf", &token), ("confirm", "yes"), ("event", "Approve")])
        .await
        .assert(StatusCode::CONFLICT, "has already finished");

    // Delete: a finished instance and its child; an unfinished one only when forced.
    let done = post(&app, "/instances/holder-1/delete", &[("csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/?deleted=instance+holder-1+and+1+sub-orchestration");
    assert_eq!(state(&store, "holder-1").await, None);
    assert_eq!(state(&store, "holder-1-child").await, None);
    get(&app, done.location())
        .await
        .assert(StatusCode::OK, "Deleted instance holder-1 and 1 sub-orchestration.");
    post(&app, "/instances/pending-1/delete", &[("csrf", &token), ("confirm", "yes")])
        .await
        .assert(StatusCode::CONFLICT, "has not finished");
    post(&app, "/instances/pending-1/delete", &[("csrf", &token), ("force", "yes")])
        .await
        .assert(StatusCode::OK, "It has not finished: a node running it loses it");
    let done =
        post(&app, "/instances/pending-1/delete", &[("csrf", &token), ("confirm", "yes"), ("force", "yes")])
            .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(state(&store, "pending-1").await, None);

    // Fields the action does not take, and a missing event name, are 400s.
    post(&app, "/instances/waiting-1/raise", &[("csrf", &token), ("data", "x")])
        .await
        .assert(StatusCode::BAD_REQUEST, "the event name is required");
    post(&app, "/instances/waiting-1/cancel", &[("csrf", &token), ("force", "yes")])
        .await
        .assert(StatusCode::BAD_REQUEST, "bad parameter &#39;force&#39;");
    post(&app, "/instances/waiting-1/cancel", &[("csrf", &token), ("confirm", "maybe")])
        .await
        .assert(StatusCode::BAD_REQUEST, "expected yes");
}

#[tokio::test]
async fn actions_need_the_form_token_and_the_same_site() {
    let store = store().await;
    let app = console::router(store.clone());
    let token = token(&app, "").await;
    let confirm = |t: &str| form(&[("csrf", t), ("confirm", "yes"), ("reason", "x")]);

    post(&app, "/instances/waiting-1/cancel", &[("confirm", "yes")])
        .await
        .assert(StatusCode::FORBIDDEN, "token is missing");
    post(&app, "/instances/waiting-1/cancel", &[("csrf", "0123"), ("confirm", "yes")])
        .await
        .assert(StatusCode::FORBIDDEN, "cross-site");
    for (name, value) in
        [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")]
    {
        let request = post_request("/instances/waiting-1/cancel")
            .header(name, value)
            .body(Body::from(confirm(&token)))
            .unwrap();
        send(&app, request).await.assert(StatusCode::FORBIDDEN, "another site");
    }
    assert!(queued(&store, "waiting-1").await.is_empty(), "no refused request changed anything");

    // The console's own pages send Origin: the same host.
    let request = post_request("/instances/waiting-1/cancel")
        .header("origin", "http://console.test")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(confirm(&token)))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::SEE_OTHER);
    assert_eq!(queued(&store, "waiting-1").await.len(), 1);
    // Behind a reverse proxy, the browser's host is the forwarded one.
    let request = post_request("/instances/waiting-2/cancel")
        .header("origin", "https://ops.example")
        .header("x-forwarded-host", "ops.example")
        .body(Body::from(confirm(&token)))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::SEE_OTHER);
    assert_eq!(queued(&store, "waiting-2").await.len(), 1);

    // A token given to every replica is the one forms carry.
    let shared = Console::new(store).csrf_token("replicas-agree").into_router();
    assert_eq!(self::token(&shared, "").await, "replicas-agree");
}

#[tokio::test]
async fn read_only_refuses_actions_and_shows_no_buttons() {
    let store = store().await;
    let app = Console::new(store.clone()).read_only(true).into_router();
    let page = get(&app, "/instances/waiting-1").await.assert(StatusCode::OK, "read-only");
    for form in ["id=\"actions\"", "raise-form", "delete-form", "name=\"csrf\""] {
        assert!(!page.body.contains(form), "{form} shown on a read-only console");
    }
    for action in ["raise", "cancel", "terminate", "delete"] {
        post(&app, &format!("/instances/waiting-1/{action}"), &[("confirm", "yes"), ("event", "Approve")])
            .await
            .assert(StatusCode::FORBIDDEN, "this console is read-only");
    }
    assert!(queued(&store, "waiting-1").await.is_empty());
    assert_eq!(state(&store, "waiting-1").await, Some(InstanceState::Running));
    get(&app, "/").await.assert(StatusCode::OK, "waiting-1");
}

#[tokio::test]
async fn the_authorize_hook_answers_401_and_403() {
    let store = store().await;
    let app = Console::new(store.clone())
        .authorize(|request, access| {
            match (request.headers.get("x-role").and_then(|v| v.to_str().ok()), access) {
                (None, _) => Err(Denied::Unauthenticated { challenge: Some("Bearer".into()) }),
                (Some("admin"), _) | (Some("reader"), Access::Read) => Ok(()),
                (Some(_), _) => Err(Denied::Forbidden("readers cannot act".into())),
            }
        })
        .into_router();
    let anonymous = get(&app, "/").await.assert(StatusCode::UNAUTHORIZED, "Sign in");
    assert_eq!(anonymous.headers[header::WWW_AUTHENTICATE], "Bearer");
    get(&app, "/assets/console.css").await.assert(StatusCode::UNAUTHORIZED, "Sign in");
    get(&app, "/nowhere").await.assert(StatusCode::UNAUTHORIZED, "Sign in");

    let as_role = |role: &str, request: axum::http::request::Builder| request.header("x-role", role);
    let reader = send(
        &app,
        as_role("reader", Request::get("/").header(header::HOST, "h")).body(Body::empty()).unwrap(),
    )
    .await;
    reader.assert(StatusCode::OK, "waiting-1");
    let page = send(
        &app,
        as_role("admin", Request::get("/instances/waiting-1").header(header::HOST, "h"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let token =
        page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let body = form(&[("csrf", &token), ("confirm", "yes"), ("reason", "x")]);
    let refused = send(
        &app,
        as_role("reader", post_request("/instances/waiting-1/cancel"))
            .body(Body::from(body.clone()))
            .unwrap(),
    )
    .await;
    refused.assert(StatusCode::FORBIDDEN, "not allowed: readers cannot act");
    assert!(queued(&store, "waiting-1").await.is_empty());
    let allowed = send(
        &app,
        as_role("admin", post_request("/instances/waiting-1/cancel")).body(Body::from(body)).unwrap(),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER);
    assert_eq!(queued(&store, "waiting-1").await.len(), 1);
}

#[tokio::test]
async fn basic_auth_asks_the_browser_for_a_password() {
    let app = Console::new(store().await).authorize(console::basic_auth("ops", "s3cret")).into_router();
    let asked = get(&app, "/").await.assert(StatusCode::UNAUTHORIZED, "Sign in");
    assert_eq!(asked.headers[header::WWW_AUTHENTICATE], "Basic realm=\"duroxide console\"");
    let with = |credentials: &str| {
        Request::get("/")
            .header(header::HOST, "h")
            .header(header::AUTHORIZATION, credentials)
            .body(Body::empty())
            .unwrap()
    };
    // "ops:s3cret" and "ops:wrong" in base64.
    send(&app, with("Basic b3BzOnMzY3JldA==")).await.assert(StatusCode::OK, "waiting-1");
    send(&app, with("Basic b3BzOndyb25n")).await.assert(StatusCode::UNAUTHORIZED, "Sign in");
}

#[tokio::test]
async fn user_layers_run_before_the_console() {
    let app = Console::new(store().await)
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.headers().contains_key("x-session") {
                    next.run(request).await
                } else {
                    axum::response::IntoResponse::into_response((StatusCode::IM_A_TEAPOT, "no session"))
                }
            },
        ))
        .into_router();
    get(&app, "/").await.assert(StatusCode::IM_A_TEAPOT, "no session");
    let request =
        Request::get("/").header("x-session", "1").header(header::HOST, "h").body(Body::empty()).unwrap();
    send(&app, request).await.assert(StatusCode::OK, "waiting-1");
}

#[tokio::test]
async fn nested_under_a_prefix_every_link_and_form_follows_it() {
    let store = store().await;
    let app = Router::new().nest("/ops/duroxide", console::router(store.clone()));
    for uri in [
        "/ops/duroxide",
        "/ops/duroxide/instances/waiting-1",
        "/ops/duroxide/versions",
        "/ops/duroxide/summary",
    ] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let targets: Vec<&str> = page
            .body
            .split(" href=\"")
            .chain(page.body.split(" action=\""))
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .filter(|t| t.starts_with('/'))
            .collect();
        assert!(!targets.is_empty(), "{uri}");
        for t in targets {
            // The root is the prefix itself: a nested router does not answer `/ops/duroxide/`.
            let inside =
                t == "/ops/duroxide" || t.starts_with("/ops/duroxide/") || t.starts_with("/ops/duroxide?");
            assert!(inside, "{uri} links to {t}");
        }
    }
    get(&app, "/ops/duroxide/assets/console.css").await.assert(StatusCode::OK, "svg.timeline");
    get(&app, "/ops/duroxide/nowhere").await.assert(StatusCode::NOT_FOUND, "href=\"/ops/duroxide\"");

    // The flow works under the prefix: ask, confirm, land back on the instance page.
    let token = token(&app, "/ops/duroxide").await;
    let ask =
        post(&app, "/ops/duroxide/instances/waiting-1/raise", &[("csrf", &token), ("event", "Approve")])
            .await
            .assert(StatusCode::OK, "action=\"/ops/duroxide/instances/waiting-1/raise\"");
    assert!(ask.body.contains("href=\"/ops/duroxide/instances/waiting-1\" id=\"back\""));
    let done = post(
        &app,
        "/ops/duroxide/instances/waiting-1/raise",
        &[("csrf", &token), ("confirm", "yes"), ("event", "Approve"), ("data", "")],
    )
    .await;
    assert_eq!(done.location(), "/ops/duroxide/instances/waiting-1?done=raise");
    assert_eq!(queued(&store, "waiting-1").await.len(), 1);
}

#[tokio::test]
async fn the_summary_shows_workers_and_who_serves_each_tag() {
    let store: Arc<dyn duroxide::Provider> =
        Arc::new(SqliteProvider::new("sqlite::memory:", None).await.expect("open the store"));
    let orchestrations = OrchestrationRegistry::builder()
        .register("Encode", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Transcode", "clip").with_tag("video").await?)
        })
        .build();
    // An orchestration-only node and a general pool: nobody serves `video`.
    let orchestrator = Runtime::start_with_options(
        store.clone(),
        activities(),
        orchestrations.clone(),
        RuntimeOptions {
            worker_concurrency: 0,
            worker_node_id: Some("orchestrator".into()),
            ..Default::default()
        },
    )
    .await;
    let general = Runtime::start_with_options(
        store.clone(),
        activities(),
        orchestrations,
        RuntimeOptions { worker_node_id: Some("general-1".into()), ..Default::default() },
    )
    .await;
    let client = Client::new(store.clone());
    client.start_orchestration("encode-1", "Encode", "").await.unwrap();
    for _ in 0..500 {
        if !client.describe_instance("encode-1").await.unwrap().pending_activities.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let app = console::router(store.clone());

    let summary = get(&app, "/summary").await.assert(StatusCode::OK, "<h2>Workers (2 live)</h2>");
    for needle in [
        "<code>general-1</code></td><td>untagged</td><td>4</td>",
        "<code>orchestrator</code></td><td>none</td><td>0</td>",
        "<h2>Activities waiting per tag</h2>",
        "<td><code>video</code></td><td>1</td>",
        "no live worker serves this tag",
    ] {
        assert!(summary.body.contains(needle), "expected {needle:?} in: {}", summary.body);
    }
    let page = get(&app, "/instances/encode-1").await.assert(StatusCode::OK, "<th>Tag</th>");
    assert!(
        page.body
            .contains("<code>video</code> <span class=\"unserved\">no live worker serves this tag</span>"),
        "{}",
        page.body
    );

    // A graceful shutdown removes a node's record.
    general.shutdown(None).await;
    let summary = get(&app, "/summary").await.assert(StatusCode::OK, "<h2>Workers (1 live)</h2>");
    assert!(!summary.body.contains("general-1"), "{}", summary.body);
    orchestrator.shutdown(None).await;
    get(&app, "/summary").await.assert(StatusCode::OK, "No runtime has recorded itself.");
}
