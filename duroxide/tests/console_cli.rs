//! `duroxide console`, run as a real process on a SQLite file: it says where it listens
//! and that loopback is the default, serves the console there, honours `--read-only` and
//! `DUROXIDE_CONSOLE_AUTH`, warns about a non-loopback address without either, and
//! rejects bad options as usage errors.

mod console_support;

use duroxide::prelude::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, OnceLock};

/// A store file populated once per test process; each test serves its own copy.
fn template() -> &'static PathBuf {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("template.db");
        let url = format!("sqlite:{}", path.display());
        std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let store = Arc::new(SqliteProvider::new(&url, None).await.expect("create the store"));
                let runtime = Runtime::start_with_store(
                    store.clone(),
                    console_support::activities(),
                    console_support::orchestrations(),
                )
                .await;
                console_support::populate(&Client::new(store.clone())).await;
                runtime.shutdown(None).await;
            });
        })
        .join()
        .expect("populating the store failed");
        (dir, path)
    });
    path
}

/// A running `duroxide console` and what it printed first.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    url: String,
    /// The lines printed before "Press Ctrl-C to stop."
    banner: String,
    stderr: ChildStderr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(store: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_duroxide"));
    c.env_remove("DUROXIDE_STORE").env_remove("DUROXIDE_SCHEMA").env_remove("DUROXIDE_CONSOLE_AUTH");
    c.args(["--store", store, "console"]).args(args).stdin(Stdio::null());
    c
}

/// Starts the console on a copy of the template store with `args` (and `env`).
fn serve(args: &[&str], env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("app.db");
    std::fs::copy(template(), &path).expect("copy the store");
    let wal = PathBuf::from(format!("{}-wal", template().display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", path.display())).expect("copy the WAL");
    }
    let mut c = command(&format!("sqlite:{}", path.display()), args);
    c.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("start duroxide console");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the banner");
        if line == "Press Ctrl-C to stop." {
            break;
        }
        banner.push_str(&line);
        banner.push('\n');
    }
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in the banner: {banner}"))
        .to_string();
    Server { child, url, banner, stderr, _dir: dir }
}

/// Sends one HTTP/1.1 request to the server and returns the status code and body.
fn http(server: &Server, request_line: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let host = server.url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("connect to the console");
    let mut request = format!("{request_line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

#[test]
fn it_serves_the_store_on_loopback_by_default() {
    let server = serve(&["--listen", "127.0.0.1:0"], &[]);
    assert!(server.url.starts_with("http://127.0.0.1:"), "{}", server.banner);
    assert!(server.banner.contains("Listening on loopback only"), "{}", server.banner);
    let (status, page) = http(&server, "GET /", &[], "");
    assert_eq!(status, 200, "{page}");
    for id in ["waiting-1", "done-1", "holder-1-child"] {
        assert!(page.contains(id), "{id} not listed");
    }
    let (status, page) = http(&server, "GET /instances/waiting-1", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains("id=\"raise-form\""));
}

#[test]
fn the_default_address_is_loopback() {
    let help = Command::new(env!("CARGO_BIN_EXE_duroxide")).args(["console", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("[default: 127.0.0.1:8080]"), "{text}");
}

#[test]
fn read_only_refuses_actions() {
    let server = serve(&["--listen", "127.0.0.1:0", "--read-only"], &[]);
    assert!(server.banner.contains("Read-only"), "{}", server.banner);
    let (status, page) = http(&server, "GET /instances/waiting-1", &[], "");
    assert_eq!(status, 200);
    assert!(!page.contains("raise-form"));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, page) = http(&server, "POST /instances/waiting-1/cancel", &form, "confirm=yes");
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("read-only"));
}

#[test]
fn basic_auth_from_the_environment_asks_for_a_password() {
    let server = serve(&["--listen", "127.0.0.1:0"], &[("DUROXIDE_CONSOLE_AUTH", "ops:s3cret")]);
    assert!(server.banner.contains("asked for the user and password"), "{}", server.banner);
    let (status, page) = http(&server, "GET /", &[], "");
    assert_eq!(status, 401);
    assert!(page.contains("WWW-Authenticate: Basic") || page.contains("www-authenticate: Basic"), "{page}");
    // "ops:s3cret" in base64.
    let (status, _) = http(&server, "GET /", &[("Authorization", "Basic b3BzOnMzY3JldA==")], "");
    assert_eq!(status, 200);
}

#[test]
fn a_reachable_console_that_can_act_without_a_password_is_warned_about() {
    let mut server = serve(&["--listen", "0.0.0.0:0"], &[]);
    assert!(!server.banner.contains("loopback only"), "{}", server.banner);
    let mut first = String::new();
    BufReader::new(&mut server.stderr).read_line(&mut first).expect("read stderr");
    assert!(first.starts_with("WARNING: the console listens on 0.0.0.0:"), "{first}");
    assert!(
        first.contains("anyone who reaches it can raise events, cancel, terminate and delete"),
        "{first}"
    );

    // Read-only or a password: no warning, but the banner says who can reach it.
    let quiet = serve(&["--listen", "0.0.0.0:0", "--read-only"], &[]);
    assert!(quiet.banner.contains("reachable from other machines"), "{}", quiet.banner);
}

/// Bad options are refused before the store is even looked at: the store named here does
/// not exist, and a usage error (exit 2) still wins over a store error (exit 1).
#[test]
fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite:{}", dir.path().join("absent.db").display());
    let out = command(&store, &["--basic-auth", "no-colon"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("must be USER:PASSWORD"), "{stderr}");
    let out = command(&store, &["--listen", "localhost"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_duroxide"))
        .env_remove("DUROXIDE_STORE")
        .arg("console")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store given"));
}
