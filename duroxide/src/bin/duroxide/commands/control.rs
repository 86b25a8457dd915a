//! Commands that act on one running instance: `raise`, `cancel`, `terminate`. Each writes
//! one message or one state change; `cancel` and `terminate` ask for confirmation first.

use super::Context;
use crate::args::{CancelArgs, RaiseArgs, TerminateArgs};
use crate::confirm::confirm;
use crate::error::CliError;
use crate::output::{count, print, print_json};
use serde::Serialize;
use std::io::Read;

/// `raise`: queues an external event for the instance.
pub async fn raise(ctx: &Context, a: RaiseArgs) -> Result<(), CliError> {
    let data = if a.data == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("cannot read the event data from stdin: {e}"), ""))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.data
    };
    let client = ctx.client().await?;
    client.raise_event(&a.id, &a.event, data).await?;
    if ctx.json {
        return print_json(&Raised { instance: &a.id, event: &a.event });
    }
    print(&format!("Raised event '{}' for instance '{}'.\n", a.event, a.id))
}

/// `raise --json`.
#[derive(Serialize)]
struct Raised<'a> {
    instance: &'a str,
    event: &'a str,
}

/// `cancel`: asks the instance to cancel; its code sees the cancellation at its next turn.
pub async fn cancel(ctx: &Context, a: CancelArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    // Check first, so a typo is reported before the question is asked.
    check_unfinished(&client, &a.id).await?;
    confirm(&format!("Cancel instance '{}' (and its sub-orchestrations)?", a.id), a.yes)?;
    client.cancel_instance(&a.id, a.reason.as_str()).await?;
    if ctx.json {
        return print_json(&CancelRequested { instance: &a.id, cancel_requested: true });
    }
    print(&format!(
        "Cancellation requested for instance '{}': it ends as cancelled at its next turn \
         (a runtime must be running).\n",
        a.id
    ))
}

/// `cancel --json`.
#[derive(Serialize)]
struct CancelRequested<'a> {
    instance: &'a str,
    cancel_requested: bool,
}

/// `terminate`: ends the instance and its unfinished sub-orchestrations now.
pub async fn terminate(ctx: &Context, a: TerminateArgs) -> Result<(), CliError> {
    let client = ctx.client().await?;
    check_unfinished(&client, &a.id).await?;
    confirm(
        &format!(
            "Terminate instance '{}' and its unfinished sub-orchestrations, without running their code?",
            a.id
        ),
        a.yes,
    )?;
    let terminated = client.terminate_instance(&a.id, &a.reason).await?;
    if ctx.json {
        return print_json(&Terminated { terminated });
    }
    let mut text = format!("Terminated {}:\n", count(terminated.len() as u64, "instance"));
    for id in &terminated {
        text.push_str(&format!("  {id}\n"));
    }
    print(&text)
}

/// `terminate --json`.
#[derive(Serialize)]
struct Terminated {
    terminated: Vec<String>,
}

/// Fails as the client would (not found, already finished) before any question is asked.
async fn check_unfinished(client: &duroxide::Client, id: &str) -> Result<(), CliError> {
    use duroxide::client::FinalState;
    use duroxide::{ClientError, OrchestrationStatus};
    let status = client.get_orchestration_status(id).await?;
    if let OrchestrationStatus::NotFound = status {
        return Err(ClientError::NotFound(id.to_string()).into());
    }
    if let Some(state) = FinalState::of(&status) {
        return Err(ClientError::InstanceFinished { instance: id.to_string(), state }.into());
    }
    Ok(())
}
