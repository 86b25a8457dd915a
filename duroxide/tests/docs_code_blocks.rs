//! The ```rust code blocks of `docs/*.md` and `README.md`, compiled against the real API.
//!
//! Each block becomes a module of `docs_code_blocks/blocks.rs`, which this test crate
//! compiles, so a doc page that names a method, type or field that does not exist fails the
//! build. The file is generated from the markdown: `blocks_match_the_docs` fails when a
//! block changed and the file was not regenerated. To regenerate, empty the file (the old
//! blocks may no longer compile) and run the test with `DUROXIDE_BLESS_DOCS=1`:
//!
//! ```text
//! : > duroxide/tests/docs_code_blocks/blocks.rs
//! DUROXIDE_BLESS_DOCS=1 cargo test -p duroxide --features postgres,provider-test --test docs_code_blocks
//! ```
//!
//! Conventions in the markdown:
//! - ```` ```rust ```` blocks are compiled as the body of an `async fn` returning
//!   `Result<(), Box<dyn Error + Send + Sync>>`, so statements, items and `?` all work.
//! - ```` ```rust,ignore ```` marks a sketch that is not meant to compile (a macro's
//!   expansion, a signature shown alone).
//! - An HTML comment right before the fence (invisible when rendered) supplies what the
//!   page leaves out: `<!-- docs-test [module] [features=a,b]` then setup lines, then
//!   `-->`. A line `{block}` marks where the block goes (default: after the setup);
//!   `module` compiles the result as module items instead of a function body; `features`
//!   compiles it only with those crate features.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[rustfmt::skip]
#[path = "docs_code_blocks/blocks.rs"]
mod blocks;

const GENERATED: &str = "docs_code_blocks/blocks.rs";

/// One ```rust block and how to compile it.
struct Block {
    /// e.g. `docs/retries.md, block 1`
    origin: String,
    /// A module name derived from the origin.
    module: String,
    code: String,
    setup: Option<Setup>,
    ignored: bool,
}

struct Setup {
    module: bool,
    features: Vec<String>,
    lines: Vec<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn markdown_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files.push(root.join("README.md"));
    files
}

/// The setup comment that ends on the line before `fence` (blank lines between allowed).
fn setup_before(lines: &[&str], fence: usize) -> Option<Setup> {
    let mut end = fence;
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end == 0 || lines[end - 1].trim() != "-->" {
        return None;
    }
    let close = end - 1;
    let open = (0..close).rev().find(|&i| lines[i].trim_start().starts_with("<!--"))?;
    let header = lines[open].trim_start().strip_prefix("<!--")?.trim();
    let options = header.strip_prefix("docs-test")?;
    let mut setup = Setup { module: false, features: Vec::new(), lines: Vec::new() };
    for option in options.split_whitespace() {
        if option == "module" {
            setup.module = true;
        } else if let Some(list) = option.strip_prefix("features=") {
            setup.features = list.split(',').map(str::to_string).collect();
        } else {
            panic!("unknown docs-test option `{option}` (line {})", open + 1);
        }
    }
    setup.lines = lines[open + 1..close].iter().map(|l| l.to_string()).collect();
    Some(setup)
}

fn extract(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).expect("readable markdown");
    let lines: Vec<&str> = text.lines().collect();
    let rel = path.strip_prefix(repo_root()).unwrap_or(path).display().to_string();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let close = (i + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("{rel}:{}: unclosed code fence", i + 1));
        let mut attrs = info.trim().split(',').map(str::trim);
        if attrs.next() == Some("rust") {
            let ignored = attrs.any(|a| a == "ignore");
            let code = lines[i + 1..close]
                .iter()
                .map(|l| {
                    if l.len() >= indent && l[..indent].trim().is_empty() {
                        &l[indent..]
                    } else {
                        l.trim_start()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("doc");
            // Numbered per page rather than by line, so editing prose leaves the generated
            // file as it is.
            let n = blocks.len() + 1;
            blocks.push(Block {
                origin: format!("{rel}, block {n}"),
                module: format!("{}_block_{n}", stem.replace(['-', '.'], "_").to_lowercase()),
                code,
                setup: setup_before(&lines, i),
                ignored,
            });
        }
        i = close + 1;
    }
    blocks
}

fn all_blocks() -> Vec<Block> {
    markdown_files().iter().flat_map(|p| extract(p)).collect()
}

fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    out.push_str(
        "// @generated by duroxide/tests/docs_code_blocks.rs from the ```rust blocks of docs/*.md\n\
         // and README.md. Do not edit: change the markdown, then regenerate as the docs of\n\
         // duroxide/tests/docs_code_blocks.rs say.\n\
         #![allow(warnings, clippy::all)]\n",
    );
    for b in blocks.iter().filter(|b| !b.ignored) {
        let mut code: Vec<String> = b.code.lines().map(str::to_string).collect();
        let mut module = false;
        if let Some(setup) = &b.setup {
            module = setup.module;
            if let Some(at) = setup.lines.iter().position(|l| l.trim() == "{block}") {
                let mut lines = setup.lines[..at].to_vec();
                lines.append(&mut code);
                lines.extend_from_slice(&setup.lines[at + 1..]);
                code = lines;
            } else {
                let mut lines = setup.lines.clone();
                lines.append(&mut code);
                code = lines;
            }
        }
        let _ = writeln!(out, "\n// {}", b.origin);
        if let Some(setup) = &b.setup
            && !setup.features.is_empty()
        {
            let features: Vec<String> = setup.features.iter().map(|f| format!("feature = {f:?}")).collect();
            let _ = writeln!(out, "#[cfg(all({}))]", features.join(", "));
        }
        let _ = writeln!(out, "mod {} {{", b.module);
        if module {
            for l in &code {
                let _ = writeln!(out, "{l}");
            }
        } else {
            out.push_str("async fn block() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {\n");
            for l in &code {
                let _ = writeln!(out, "{l}");
            }
            out.push_str("Ok(())\n}\n");
        }
        out.push_str("}\n");
    }
    out
}

#[test]
fn blocks_match_the_docs() {
    let blocks = all_blocks();
    let expected = render(&blocks);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(GENERATED);
    if std::env::var_os("DUROXIDE_BLESS_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write generated blocks");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is out of date with the markdown; regenerate it: empty it, then run \
         DUROXIDE_BLESS_DOCS=1 cargo test -p duroxide --features postgres,provider-test --test docs_code_blocks",
        path.display()
    );
}

/// Sketches are the exception: most blocks must compile.
#[test]
fn most_blocks_compile() {
    let blocks = all_blocks();
    let ignored: Vec<&str> = blocks.iter().filter(|b| b.ignored).map(|b| b.origin.as_str()).collect();
    let compiled = blocks.len() - ignored.len();
    assert!(
        compiled > 2 * ignored.len(),
        "{compiled} compiled blocks, {} ignored: {ignored:?}",
        ignored.len()
    );
}

/// Every doc page with Rust in it is covered (a page whose blocks all fail to parse as
/// markdown fences would otherwise silently drop out).
#[test]
fn every_page_is_scanned() {
    let blocks = all_blocks();
    for page in ["README.md", "docs/retries.md", "docs/orchestration-guide.md", "docs/providers.md"] {
        assert!(blocks.iter().any(|b| b.origin.starts_with(page)), "no ```rust block found in {page}");
    }
}
