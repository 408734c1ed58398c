//! Zendesk tickets as the Incremental Ticket Export returns them (`tickets[]`, with the
//! `users[]` sideload of `include=users` giving requesters' emails). Category is the ticket
//! `type` (question, incident, problem, task); labels are `tags`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use mfascope_core::ticket::Ticket;

use super::{optional_time, required, required_time, strings, text};

/// A sideloaded user.
#[derive(serde::Deserialize)]
pub(super) struct User {
    pub(super) id: u64,
    pub(super) email: Option<String>,
}

pub(super) fn map(
    obj: &Map<String, Value>,
    users: &HashMap<u64, String>,
) -> Result<Ticket, String> {
    let requester = match obj.get("requester_id") {
        Some(Value::Number(n)) => Some(match n.as_u64().and_then(|id| users.get(&id)) {
            Some(email) => email.clone(),
            None => format!("zendesk:user:{n}"),
        }),
        _ => None,
    };
    Ok(Ticket {
        id: required(obj, "id")?,
        created: required_time(obj, "created_at")?,
        updated: optional_time(obj, "updated_at")?,
        system: "zendesk",
        requester,
        subject: text(obj, "subject").or_else(|| text(obj, "raw_subject")),
        status: text(obj, "status"),
        category: text(obj, "type"),
        tags: strings(obj, "tags")?,
        match_reason: None,
    })
}
