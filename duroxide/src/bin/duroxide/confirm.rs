//! Confirmation of destructive commands: a `[y/N]` question on a terminal, `--yes` in
//! scripts. Without a terminal and without `--yes` the command is refused (exit 1), so a
//! script never deletes by accident.

use crate::error::CliError;
use std::io::{BufRead, IsTerminal, Write};

/// Asks `question` unless `yes`; `Ok` means go ahead.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::refused(
            format!("not confirmed: {question}"),
            "stdin is not a terminal, so nobody can answer; pass --yes to confirm",
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    if stdin.lock().read_line(&mut answer).is_err() {
        answer.clear();
    }
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::refused("not confirmed: nothing was changed", "")),
    }
}
