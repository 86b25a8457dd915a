//! The actions: raise an event, cancel, terminate, delete. Each is a plain HTML form on
//! the instance page that posts to `/instances/{id}/{action}`; the first post answers with
//! a confirmation page repeating what will happen, whose "yes" button posts again with
//! `confirm=yes`, and only that one acts (then redirects back). No script is needed.
//! Every post must carry the console's token (see `auth`) and is refused when the console
//! is read-only.

use super::Shared;
use super::auth::token_matches;
use super::error::ConsoleError;
use super::html::{self, Base, Nav, esc, instance_url};
use super::params::Params;
use crate::provider::InstanceRecord;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;

/// The most bytes an action's form may hold: an event payload of the default payload limit,
/// percent-encoded, with room for the other fields (the router's body limit).
pub(crate) const MAX_FORM_BYTES: usize = crate::DEFAULT_MAX_PAYLOAD_BYTES * 4 + 64 * 1024;

/// One of the console's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Raise,
    Cancel,
    Terminate,
    Delete,
}

impl Action {
    /// The action named in a path or `done=` parameter.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "raise" => Action::Raise,
            "cancel" => Action::Cancel,
            "terminate" => Action::Terminate,
            "delete" => Action::Delete,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Action::Raise => "raise",
            Action::Cancel => "cancel",
            Action::Terminate => "terminate",
            Action::Delete => "delete",
        }
    }

    /// What the instance page says after the action.
    pub(crate) fn done_message(self) -> &'static str {
        match self {
            Action::Raise => "Event raised: the instance receives it at its next turn.",
            Action::Cancel => "Cancellation requested: the instance ends at its next turn.",
            Action::Terminate => "Terminated.",
            Action::Delete => "Deleted.",
        }
    }
}

/// The action forms of the instance page.
pub(crate) fn forms(body: &mut String, base: &Base, csrf: &str, r: &InstanceRecord) {
    let url = instance_url(base, &r.instance);
    let token = format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(csrf));
    body.push_str("<section id=\"actions\"><h2>Actions</h2><div class=\"actions\">");
    if !r.state.is_terminal() {
        let _ = write!(
            body,
            "<form class=\"action\" id=\"raise-form\" method=\"post\" action=\"{url}/raise\"><h3>Raise an event</h3>{token}\
             <label>Event name<input type=\"text\" name=\"event\" required></label>\
             <label>Data<textarea name=\"data\" rows=\"2\" placeholder='\"approved\"'></textarea></label>\
             <button type=\"submit\" id=\"raise-button\">Raise event…</button></form>\
             <form class=\"action\" id=\"cancel-form\" method=\"post\" action=\"{url}/cancel\"><h3>Cancel</h3>{token}\
             <p>The code sees the cancellation and may clean up.</p>\
             <label>Reason<input type=\"text\" name=\"reason\" value=\"cancelled from the console\"></label>\
             <button type=\"submit\" id=\"cancel-button\">Cancel…</button></form>\
             <form class=\"action\" id=\"terminate-form\" method=\"post\" action=\"{url}/terminate\"><h3>Terminate</h3>{token}\
             <p>Ends it now without running its code.</p>\
             <label>Reason<input type=\"text\" name=\"reason\" value=\"terminated from the console\"></label>\
             <button type=\"submit\" class=\"danger\" id=\"terminate-button\">Terminate…</button></form>"
        );
    }
    let _ = write!(
        body,
        "<form class=\"action\" id=\"delete-form\" method=\"post\" action=\"{url}/delete\"><h3>Delete</h3>{token}\
         <p>Removes it, its sub-orchestrations and their histories.</p>"
    );
    if !r.state.is_terminal() {
        body.push_str("<label class=\"check\"><input type=\"checkbox\" name=\"force\" value=\"yes\"> although it has not finished</label>");
    }
    body.push_str("<button type=\"submit\" class=\"danger\" id=\"delete-button\">Delete…</button></form></div></section>");
}

/// What an action form asks for.
enum Request {
    Raise { event: String, data: String },
    Cancel { reason: String },
    Terminate { reason: String },
    Delete { force: bool },
}

impl Request {
    fn read(action: Action, params: &Params) -> Result<Self, ConsoleError> {
        let common = ["csrf", "confirm"];
        let fields: &[&str] = match action {
            Action::Raise => &["event", "data"],
            Action::Cancel | Action::Terminate => &["reason"],
            Action::Delete => &["force"],
        };
        params.only(&[&common[..], fields].concat())?;
        let reason =
            |default: &str| Ok::<_, ConsoleError>(params.one("reason")?.unwrap_or(default).to_string());
        Ok(match action {
            Action::Raise => Request::Raise {
                event: params
                    .one("event")?
                    .ok_or_else(|| ConsoleError::bad("event", "the event name is required"))?
                    .to_string(),
                data: params.raw("data")?.unwrap_or_default().to_string(),
            },
            Action::Cancel => Request::Cancel { reason: reason("cancelled from the console")? },
            Action::Terminate => Request::Terminate { reason: reason("terminated from the console")? },
            Action::Delete => Request::Delete {
                force: match params.one("force")? {
                    None | Some("no") => false,
                    Some("yes") => true,
                    Some(other) => {
                        return Err(ConsoleError::bad("force", format!("'{other}': expected yes or no")));
                    }
                },
            },
        })
    }

    /// The fields to post again from the confirmation page.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            Request::Raise { event, data } => vec![("event", event), ("data", data)],
            Request::Cancel { reason } | Request::Terminate { reason } => vec![("reason", reason)],
            Request::Delete { force } => vec![("force", if *force { "yes" } else { "no" })],
        }
    }
}

/// `POST /instances/{id}/{action}`.
pub(crate) async fn submit(
    State(shared): State<Shared>,
    base: Base,
    Path((id, action_name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let Some(action) = Action::parse(&action_name) else {
        return Err(ConsoleError::NoSuchPage(format!("/instances/{}/{action_name}", html::segment(&id))));
    };
    if shared.read_only {
        return Err(ConsoleError::ReadOnly);
    }
    let params = Params::parse(&body);
    if !params.raw("csrf")?.is_some_and(|t| token_matches(t, &shared.csrf)) {
        return Err(ConsoleError::Forgery("the form's token is missing or out of date".into()));
    }
    let request = Request::read(action, &params)?;
    let confirmed = match params.one("confirm")? {
        None => false,
        Some("yes") => true,
        Some(other) => return Err(ConsoleError::bad("confirm", format!("'{other}': expected yes"))),
    };
    if !confirmed {
        // The instance must exist for the question to make sense.
        let record = shared.client.describe_instance(&id).await?.record;
        return Ok(Html(confirmation(&shared, &base, &record, action, &request)).into_response());
    }
    let client = &shared.client;
    let back = instance_url(&base, &id);
    let location = match &request {
        Request::Raise { event, data } => {
            client.raise_event(&id, event, data.as_str()).await?;
            format!("{back}?done=raise")
        }
        Request::Cancel { reason } => {
            client.cancel_instance(&id, reason.as_str()).await?;
            format!("{back}?done=cancel")
        }
        Request::Terminate { reason } => {
            client.terminate_instance(&id, reason).await?;
            format!("{back}?done=terminate")
        }
        Request::Delete { force } => {
            let removed = client.delete_instance(&id, *force).await?;
            let text = match removed.len() {
                0 | 1 => format!("instance {id}"),
                n => {
                    format!("instance {id} and {} sub-orchestration{}", n - 1, if n == 2 { "" } else { "s" })
                }
            };
            format!("{}?{}", base.root(), html::query([("deleted", text.as_str())]))
        }
    };
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

fn confirmation(
    shared: &Shared,
    base: &Base,
    r: &InstanceRecord,
    action: Action,
    request: &Request,
) -> String {
    let id = esc(&r.instance);
    let (question, explanation, button) = match request {
        Request::Raise { event, .. } => (
            format!("Raise event <code>{}</code> for instance <code>{id}</code>?", esc(event)),
            "The instance receives it at its next turn; one that does not wait for it yet keeps it until it does."
                .to_string(),
            "Yes, raise it",
        ),
        Request::Cancel { .. } => (
            format!("Cancel instance <code>{id}</code>?"),
            "Its code sees the cancellation and may clean up; its sub-orchestrations are cancelled too.".into(),
            "Yes, cancel it",
        ),
        Request::Terminate { .. } => (
            format!("Terminate instance <code>{id}</code>?"),
            "It fails now with category Terminated, without running its code, and so do its unfinished \
             sub-orchestrations. A waiting parent is told."
                .into(),
            "Yes, terminate it",
        ),
        Request::Delete { force } => (
            format!("Delete instance <code>{id}</code>?"),
            format!(
                "The instance, its sub-orchestrations and their histories are removed for good.{}",
                if *force { " It has not finished: a node running it loses it and writes nothing more." } else { "" }
            ),
            "Yes, delete it",
        ),
    };
    let url = instance_url(base, &r.instance);
    let mut body = format!(
        "<section class=\"confirm\" id=\"confirm\"><h1>{question}</h1><p>{explanation}</p><p>It is {} now.</p><dl>",
        html::state_name(r.state)
    );
    for (k, v) in request.fields() {
        let _ = write!(body, "<dt>{k}</dt><dd><code>{}</code></dd>", esc(&html::truncate(v, 2_000)));
    }
    let _ = write!(
        body,
        "</dl><form method=\"post\" action=\"{url}/{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\">",
        action.name(),
        esc(&shared.csrf)
    );
    for (k, v) in request.fields() {
        let _ = write!(body, "<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v));
    }
    let _ = write!(
        body,
        "<button type=\"submit\" class=\"danger\" id=\"confirm-button\">{button}</button> \
         <a href=\"{url}\" id=\"back\">No, go back</a></form></section>"
    );
    html::page(shared, base, &format!("Confirm: {} {}", action.name(), r.instance), Nav::Instances, &body)
}
