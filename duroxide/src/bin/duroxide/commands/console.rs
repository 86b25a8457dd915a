//! `console`: serves the web console (`duroxide::console`) for the store until Ctrl-C.
//! It listens on loopback unless told otherwise, says where it listens and who can reach
//! it, and warns loudly when other machines could reach a console that can act and asks
//! no password.

use super::Context;
use crate::args::ConsoleArgs;
use crate::error::CliError;
use crate::output::print;
use crate::store::Access;
use duroxide::console::{Console, basic_auth};

/// `console`.
pub async fn serve(ctx: &Context, a: ConsoleArgs) -> Result<(), CliError> {
    let url = ctx.store_url()?;
    // Options are checked before the store is opened: a usage error never depends on it.
    let credentials = a
        .basic_auth
        .as_deref()
        .map(|c| {
            c.split_once(':').filter(|(u, p)| !u.is_empty() && !p.is_empty()).ok_or_else(|| {
                CliError::usage(
                    "--basic-auth (or DUROXIDE_CONSOLE_AUTH) must be USER:PASSWORD",
                    "for example DUROXIDE_CONSOLE_AUTH=ops:$(openssl rand -hex 16)",
                )
            })
        })
        .transpose()?;
    let store = url.open(Access::Existing).await?;
    let mut console = Console::new(store).read_only(a.read_only);
    if let Some((user, password)) = credentials {
        console = console.authorize(basic_auth(user, password));
    }
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| {
        CliError::refused(
            format!("cannot listen on {}: {e}", a.listen),
            "pick another address or port, e.g. --listen 127.0.0.1:8081 (port 0 picks a free one)",
        )
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::refused(format!("cannot read the listening address: {e}"), ""))?;

    let mut text = format!("duroxide console for {} at http://{addr}/\n", url.display());
    if addr.ip().is_loopback() {
        text.push_str("Listening on loopback only: reachable from this machine, not from the network.\n");
    } else if a.read_only || a.basic_auth.is_some() {
        text.push_str(&format!("Listening on {}: reachable from other machines.\n", addr.ip()));
    } else {
        eprintln!(
            "WARNING: the console listens on {addr}, which other machines can reach, and anyone who reaches it can \
             raise events, cancel, terminate and delete instances.\nWARNING: pass --read-only, or set \
             DUROXIDE_CONSOLE_AUTH=USER:PASSWORD, or listen on 127.0.0.1 behind an authenticating proxy."
        );
    }
    if a.read_only {
        text.push_str("Read-only: raise, cancel, terminate and delete are switched off.\n");
    }
    if a.basic_auth.is_some() {
        text.push_str("Browsers are asked for the user and password of --basic-auth.\n");
    }
    text.push_str("Press Ctrl-C to stop.\n");
    print(&text)?;

    let shutdown = async {
        // Without a signal handler the server runs until the process is killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    axum::serve(listener, console.into_router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| CliError::refused(format!("the console server failed: {e}"), ""))
}
