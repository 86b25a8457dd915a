//! The web console in a real headless browser: Debian's `chromium`, driven through
//! `chromedriver` with fantoccini, against a running runtime on a SQLite file whose
//! console listens on 127.0.0.1. It loads the list, filters it with the form, opens an
//! instance, finds the timeline, raises an event through the form and its confirmation
//! page, and sees the instance complete; then it visits the versions and store pages.
//!
//! Screenshots of each page go to `console-screenshots/` under Cargo's test temp dir (the
//! path is printed). With `DUROXIDE_BLESS_SCREENSHOTS=1` they are also copied to
//! `docs/images/console/`, which `docs/console.md` shows.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver` packages; `.ci/run` installs them) the test says so and passes,
//! except under `CI=true`, where it fails.

mod console_support;

use duroxide::prelude::*;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser is installed; under CI its absence is a failure.
fn browser_available() -> bool {
    let missing: Vec<&str> =
        [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing: install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the console browser test cannot run under CI: {why}");
    }
    eprintln!("skipping the console browser test: {why}");
    false
}

/// A chromedriver process, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free loopback port and waits until it says it listens.
fn start_chromedriver() -> Driver {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("chromedriver's stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("started successfully") => break,
            Some(Ok(_)) => continue,
            other => panic!("chromedriver stopped before it was ready: {other:?}"),
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver { child, url: format!("http://127.0.0.1:{port}") }
}

async fn open_browser(driver: &Driver) -> Browser {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            // Root in a container needs --no-sandbox; /dev/shm is small there.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("open a chromium session")
}

/// Where screenshots go, and a copy in docs/images/console when blessing.
struct Screenshots {
    dir: PathBuf,
    bless: Option<PathBuf>,
}

impl Screenshots {
    fn new() -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        std::fs::create_dir_all(&dir).expect("create the screenshot folder");
        eprintln!("console screenshots: {}", dir.display());
        let bless = std::env::var("DUROXIDE_BLESS_SCREENSHOTS").is_ok_and(|v| v == "1").then(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .join("docs/images/console")
        });
        Self { dir, bless }
    }

    /// Saves the whole page (the window grown to the page's height, at most 2400 px).
    async fn take(&self, browser: &Browser, name: &str) {
        let height = browser
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(900)
            .clamp(600, 2400);
        browser.set_window_size(1280, height as u32).await.expect("resize the window");
        let png = browser.screenshot().await.expect("take a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(self.dir.join(name), &png).expect("write the screenshot");
        if let Some(docs) = &self.bless {
            std::fs::create_dir_all(docs).expect("create docs/images/console");
            std::fs::write(docs.join(name), &png).expect("copy the screenshot into the docs");
        }
        browser.set_window_size(1280, 900).await.expect("resize the window back");
    }
}

async fn css(browser: &Browser, selector: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"))
}

/// The ids in the instance table of the current page.
async fn listed(browser: &Browser) -> Vec<String> {
    let mut ids = Vec::new();
    for row in browser.find_all(Locator::Css("#instances tbody tr")).await.expect("rows") {
        ids.push(row.attr("data-instance").await.expect("an id").unwrap_or_default());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_filters_opens_an_instance_and_raises_an_event() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("app.db").display());
    let store = Arc::new(SqliteProvider::new(&url, None).await.expect("open the store"));
    let runtime = Runtime::start_with_store(
        store.clone(),
        console_support::activities(),
        console_support::orchestrations(),
    )
    .await;
    let client = Client::new(store.clone());
    console_support::populate(&client).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the console");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, duroxide::console::router(store)).await.expect("serve the console")
    });

    let driver = start_chromedriver();
    let browser = open_browser(&driver).await;
    let shots = Screenshots::new();

    // The list.
    browser.goto(&format!("{base}/")).await.expect("load the list");
    css(&browser, "#instances").await;
    let mut all = listed(&browser).await;
    all.sort();
    assert_eq!(all.len(), console_support::INSTANCES.len(), "{all:?}");
    shots.take(&browser, "instances.png").await;

    // Filter: running instances whose id starts with "waiting".
    css(&browser, "#filters input[name=state][value=running]").await.click().await.expect("tick running");
    css(&browser, "#filters input[name=prefix]").await.send_keys("waiting").await.expect("type a prefix");
    css(&browser, "#apply-filters").await.click().await.expect("submit the filters");
    css(&browser, "#filters input[name=state][value=running][checked]").await;
    let mut filtered = listed(&browser).await;
    filtered.sort();
    assert_eq!(filtered, ["waiting-1", "waiting-2"]);
    shots.take(&browser, "instances-filtered.png").await;

    // Open waiting-1 and find its timeline.
    css(&browser, "#instances tr[data-instance=waiting-1] a.instance")
        .await
        .click()
        .await
        .expect("open waiting-1");
    css(&browser, "svg#timeline").await;
    let bars = browser.find_all(Locator::Css("svg#timeline rect.bar")).await.expect("bars");
    assert_eq!(bars.len(), 2, "Prepare and the deadline timer");
    assert!(css(&browser, "#summary").await.text().await.expect("summary").contains("waiting for approval"));
    shots.take(&browser, "instance.png").await;

    // Raise "Approve" through the form, confirm, and watch it complete.
    css(&browser, "#raise-form input[name=event]").await.send_keys("Approve").await.expect("type the event");
    css(&browser, "#raise-form textarea[name=data]").await.send_keys("\"ok\"").await.expect("type the data");
    css(&browser, "#raise-button").await.click().await.expect("raise");
    let question = css(&browser, "#confirm h1").await.text().await.expect("the question");
    assert_eq!(question, "Raise event Approve for instance waiting-1?");
    shots.take(&browser, "confirm.png").await;
    css(&browser, "#confirm-button").await.click().await.expect("confirm");
    let notice = css(&browser, "#notice").await.text().await.expect("the notice");
    assert!(notice.starts_with("Event raised"), "{notice}");

    let status =
        client.wait_for_orchestration("waiting-1", Duration::from_secs(30)).await.expect("it finishes");
    assert_eq!(status, OrchestrationStatus::Completed { output: "shipped order-1".into() });
    browser.goto(&format!("{base}/instances/waiting-1")).await.expect("reload the instance");
    css(&browser, "h1 .state-completed").await;
    css(&browser, "svg#timeline path.mark.completed").await;
    css(&browser, "svg#timeline path.mark.event").await;
    let bars = browser.find_all(Locator::Css("svg#timeline rect.bar")).await.expect("bars");
    assert_eq!(bars.len(), 3, "Prepare, the timer (cancelled by the event) and Ship");
    assert!(css(&browser, "#output").await.text().await.expect("output").contains("shipped order-1"));
    shots.take(&browser, "instance-completed.png").await;

    // The reports.
    browser.goto(&format!("{base}/versions")).await.expect("load versions");
    assert!(css(&browser, "#retirable").await.text().await.expect("retirable").contains("Greet 1.0.0"));
    shots.take(&browser, "versions.png").await;
    browser.goto(&format!("{base}/summary")).await.expect("load the store summary");
    css(&browser, "#queues").await;
    shots.take(&browser, "summary.png").await;

    browser.close().await.expect("close the browser");
    drop(driver);
    server.abort();
    runtime.shutdown(None).await;
}
