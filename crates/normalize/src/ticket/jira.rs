//! Jira Cloud and Jira Service Management issues as the search API returns them (`issues[]`,
//! each with `key` and `fields`). Category is the service-desk request type when the issue has
//! one, else the issue type; labels are `labels` plus component names; the requester is the
//! reporter (its email when the site shows it, else `jira:user:<accountId>`).

use serde_json::{Map, Value};

use mfascope_core::ticket::Ticket;

use super::{kind, optional_time, required, required_time, strings, text};

pub(super) fn map(obj: &Map<String, Value>) -> Result<Ticket, String> {
    let id = required(obj, "key")?;
    let fields = match obj.get("fields") {
        Some(Value::Object(f)) => f,
        None | Some(Value::Null) => return Err("fields: missing".into()),
        Some(other) => return Err(format!("fields: expected an object, found {}", kind(other))),
    };
    let named = |key: &str| -> Option<String> {
        match fields.get(key)? {
            Value::Object(o) => text(o, "name"),
            _ => None,
        }
    };
    let mut tags = strings(fields, "labels").map_err(|e| format!("fields.{e}"))?;
    if let Some(Value::Array(components)) = fields.get("components") {
        tags.extend(
            components
                .iter()
                .filter_map(|c| c.as_object().and_then(|c| text(c, "name"))),
        );
    }
    // A service-desk request type sits in a custom field: `{"requestType": {"name": …}}`.
    let request_type = fields.iter().find_map(|(k, v)| {
        let rt = v.as_object()?.get("requestType")?.as_object()?;
        k.starts_with("customfield_")
            .then(|| text(rt, "name"))
            .flatten()
    });
    let requester = match fields.get("reporter") {
        Some(Value::Object(r)) => text(r, "emailAddress")
            .or_else(|| text(r, "accountId").map(|a| format!("jira:user:{a}"))),
        _ => None,
    };
    let at = |e: String| format!("fields.{e}");
    Ok(Ticket {
        id,
        created: required_time(fields, "created").map_err(at)?,
        updated: optional_time(fields, "updated").map_err(at)?,
        system: "jira",
        requester,
        subject: text(fields, "summary"),
        status: named("status"),
        category: request_type.or_else(|| named("issuetype")),
        tags,
        match_reason: None,
    })
}
