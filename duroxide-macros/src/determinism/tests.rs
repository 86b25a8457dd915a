//! Unit tests of the path scan and the type-guard rewrite.

use super::*;
use syn::parse_quote;

fn violations(body: Block) -> Vec<String> {
    let errors = Errors::new();
    scan(&body, "ctx", &errors);
    match errors.check() {
        Ok(()) => Vec::new(),
        Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
    }
}

fn banned(body: Block) -> Vec<String> {
    violations(body).into_iter().map(|message| message.split('`').nth(1).unwrap().to_string()).collect()
}

#[test]
fn every_family_is_caught() {
    let found = banned(parse_quote!({
        let _ = std::time::SystemTime::now();
        let _ = Instant::now();
        let _ = chrono::Utc::now();
        let _ = Local::now();
        let _ = rand::random::<u8>();
        let _ = rand::thread_rng();
        let _ = rand::rng();
        let _ = uuid::Uuid::new_v4();
        let _ = Uuid::now_v7();
        tokio::time::sleep(d).await;
        let _ = tokio::time::interval(d);
        let _ = tokio::time::timeout(d, f).await;
        std::thread::sleep(d);
        tokio::spawn(f);
        std::thread::spawn(f);
        tokio::task::spawn_blocking(f);
        let _ = std::env::var("X");
        let _ = std::env::vars();
        let _ = std::fs::read_to_string("x");
        let _ = tokio::fs::read("x").await;
        let _ = std::fs::write("x", "y");
        let _ = std::net::TcpStream::connect("x");
        let _ = tokio::net::TcpStream::connect("x").await;
        let _ = std::process::Command::new("ls");
        let _ = reqwest::get("http://x").await;
        let _ = std::io::stdin();
        let _ = tokio::io::stdout();
        let _ = Instant::elapsed(&start);
        let _ = time::OffsetDateTime::now_utc();
        let _ = std::env::current_dir();
    }));
    assert_eq!(
        found,
        [
            "std::time::SystemTime::now",
            "Instant::now",
            "chrono::Utc::now",
            "Local::now",
            "rand::random",
            "rand::thread_rng",
            "rand::rng",
            "uuid::Uuid::new_v4",
            "Uuid::now_v7",
            "tokio::time::sleep",
            "tokio::time::interval",
            "tokio::time::timeout",
            "std::thread::sleep",
            "tokio::spawn",
            "std::thread::spawn",
            "tokio::task::spawn_blocking",
            "std::env::var",
            "std::env::vars",
            "std::fs::read_to_string",
            "tokio::fs::read",
            "std::fs::write",
            "std::net::TcpStream::connect",
            "tokio::net::TcpStream::connect",
            "std::process::Command::new",
            "reqwest::get",
            "std::io::stdin",
            "tokio::io::stdout",
            "Instant::elapsed",
            "time::OffsetDateTime::now_utc",
            "std::env::current_dir",
        ]
    );
}

#[test]
fn paths_as_values_closures_async_blocks_and_nested_items() {
    let found = banned(parse_quote!({
        let _ = Some(1).map(|_| Instant::now);
        let f = async { SystemTime::now() };
        {
            {
                let _ = Uuid::new_v4();
            }
        }
        fn helper() {
            std::thread::sleep(d)
        }
        let _ = <SystemTime>::now();
    }));
    assert_eq!(
        found,
        ["Instant::now", "SystemTime::now", "Uuid::new_v4", "std::thread::sleep", "SystemTime::now"]
    );
}

#[test]
fn macro_tokens_are_scanned() {
    let found = banned(parse_quote!({
        println!("{:?}", SystemTime::now());
        let _ = format!("{}", vec![rand::random::<u8>()].len());
        tokio::select! { _ = a => {}, _ = b => {} }
        futures::select! { _ = a => {} }
        select! { _ = a => {} }
        futures::select_biased! { _ = a => {} }
        my_macro!(inner::tokio::select! {});
    }));
    assert_eq!(
        found,
        [
            "SystemTime::now",
            "rand::random",
            "tokio::select!",
            "futures::select!",
            "select!",
            "inner::tokio::select!",
        ]
    );
}

#[test]
fn no_false_positives() {
    let found = violations(parse_quote!({
        let now = ctx.utc_now().await;
        let id = ctx.system_new_guid().await;
        let rand = 4;
        let x = rand + 1;
        println!("{rand} {}", rand);
        fn now() -> u8 {
            1
        }
        let _ = now();
        let _ = my_clock::now();
        let _ = x.now();
        let _ = ctx.schedule_timer(std::time::Duration::from_secs(1)).await;
        let _ = futures::join!(a, b);
        let _ = crate::net_utils::parse(x);
        let spawn = 1;
        let _ = Duration::from_secs(spawn);
        let _ = my.fs.read();
        let _ = format!("{}", input.time.sleep);
        // The user's own modules named like standard ones: a bare `time::sleep` may be
        // theirs (clippy, which resolves paths, catches `use tokio::time; time::sleep`).
        time::sleep(d);
        thread::sleep(d);
        let _ = env::var("key");
        let _ = fs::load("x");
        let _ = io::stdin();
        let _ = clock.elapsed();
        let _ = map.get(&k);
        let _ = timer.now();
    }));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn message_names_the_replacement_with_the_users_context_name() {
    let errors = Errors::new();
    scan(
        &parse_quote!({
            Instant::now();
        }),
        "octx",
        &errors,
    );
    let message = errors.check().unwrap_err().to_string();
    assert_eq!(
        message,
        "`Instant::now` is not allowed in an orchestration: it reads the wall clock, which differs when the orchestration replays; use `octx.utc_now().await` instead"
    );
}

/// The body after the type-guard rewrite, as one line of tokens.
fn rewritten(mut body: Block) -> String {
    guard_types(&mut body);
    quote::quote!(#body).to_string()
}

#[test]
fn iteration_elapsed_and_reads_on_places_are_probed() {
    let out = rewritten(parse_quote!({
        let a = m.iter().count();
        let b = self.items.keys();
        let c = (*r).values_mut();
        let d = started.elapsed();
        let e = input.read_line(&mut line);
        let f = list[0].into_iter();
    }));
    assert_eq!(out.matches("check_order").count(), 4, "{out}");
    assert_eq!(out.matches("check_clock").count(), 1, "{out}");
    assert_eq!(out.matches("check_console").count(), 1, "{out}");
    // The call itself stays, after the probe.
    assert!(out.contains(". 1"), "{out}");
    assert!(out.contains("m . iter ()"), "{out}");
}

#[test]
fn receivers_with_side_effects_and_other_methods_are_left_alone() {
    let body: Block = parse_quote!({
        let a = load().iter();
        let b = m.get(&k);
        let c = v.len();
        let d = ctx.schedule_timer(d).await;
        let e = list[i + 1].iter();
    });
    let before = quote::quote!(#body).to_string();
    assert_eq!(rewritten(body), before);
}

#[test]
fn for_loops_are_probed_once() {
    let out = rewritten(parse_quote!({
        for x in &m {}
        for x in load() {}
        for x in m.keys() {}
        for (i, x) in v.iter().enumerate() {}
    }));
    // `&m` and `load()` through the loop probe; `m.keys()` and `v.iter()` through the call
    // probe (the loop over `v.iter().enumerate()` is probed as a loop as well).
    assert_eq!(out.matches("__duroxide_iterable").count(), 3 * 3, "{out}");
    assert_eq!(out.matches("check_order").count(), 5, "{out}");
}
