//! The second determinism net: with the workspace-root `clippy.toml`, `cargo clippy` rejects
//! an aliased `SystemTime::now()` (which the macro's token scan cannot see) inside an
//! `#[orchestration]`, and leaves the same call in an `#[activity]` alone.
//!
//! Runs `cargo clippy` on a copy of `clippy-fixture/` (its own workspace) under this crate's
//! `CARGO_TARGET_TMPDIR`, with its own target dir there, so repeated runs are incremental
//! and the source tree stays clean. Fails loudly when clippy is not installed.

use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn clippy_flags_what_the_macro_cannot_see_in_orchestrations_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = Command::new(&cargo).args(["clippy", "--version"]).output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "`cargo clippy` is not available; install it (`rustup component add clippy`): the clippy net test cannot run without it"
        ),
    }

    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace_root = manifest_dir.parent().expect("ui-tests lives in the workspace");
    let fixture = manifest_dir.join("clippy-fixture");

    // Run on a copy under the target dir, so the lockfile and build output never land in
    // the source tree; start from the workspace lockfile so no new resolution is needed.
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("clippy-fixture");
    fs::create_dir_all(scratch.join("src")).unwrap();
    let duroxide_dir = workspace_root.join("duroxide");
    let manifest = fs::read_to_string(fixture.join("Cargo.toml"))
        .unwrap()
        .replace("path = \"../../duroxide\"", &format!("path = {:?}", duroxide_dir.display().to_string()));
    assert!(
        manifest.contains(&duroxide_dir.display().to_string()),
        "fixture manifest must depend on ../../duroxide"
    );
    fs::write(scratch.join("Cargo.toml"), manifest).unwrap();
    fs::copy(fixture.join("src/lib.rs"), scratch.join("src/lib.rs")).unwrap();
    let lockfile = workspace_root.join("Cargo.lock");
    if lockfile.exists() && !scratch.join("Cargo.lock").exists() {
        fs::copy(&lockfile, scratch.join("Cargo.lock")).unwrap();
    }

    let output = Command::new(&cargo)
        .arg("clippy")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(scratch.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(scratch.join("target"))
        // The list under test: the clippy.toml shipped at the workspace root.
        .env("CLIPPY_CONF_DIR", workspace_root)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("failed to run cargo clippy");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        !output.status.success(),
        "clippy accepted nondeterministic calls in an orchestration:\n{stderr}"
    );
    // Every line marked FLAGGED in the fixture is reported, with the clippy.toml reason; no
    // line marked ALLOWED is.
    let source = fs::read_to_string(fixture.join("src/lib.rs")).unwrap();
    let flagged: Vec<&str> = source.lines().filter(|l| l.contains("// FLAGGED")).map(str::trim).collect();
    assert_eq!(flagged.len(), 4, "the fixture marks four calls");
    for line in &flagged {
        assert!(stderr.contains(line), "clippy should flag `{line}`:\n{stderr}");
    }
    let errors = stderr.lines().filter(|l| l.starts_with("error: use of a disallowed method")).count();
    assert_eq!(errors, flagged.len(), "one error per flagged call:\n{stderr}");
    for method in [
        "std::time::SystemTime::now",
        "tokio::time::sleep",
        "std::collections::HashMap::keys",
        "std::time::Instant::elapsed",
    ] {
        assert!(stderr.contains(&format!("use of a disallowed method `{method}`")), "{method}:\n{stderr}");
    }
    assert!(!stderr.contains("// ALLOWED"), "activities and plain functions must not be flagged:\n{stderr}");
    assert!(
        stderr.contains("use `ctx.utc_now().await`"),
        "the error should carry the clippy.toml reason naming the replacement:\n{stderr}"
    );
}
