//! ServiceNow incidents as the Table API returns them (`result[]`), with or without
//! `sysparm_display_value` (a field is then `{"display_value": …, "value": …}`). Category is
//! `category`, labels are `subcategory` and `sys_tags`; the requester is the caller's email
//! (`caller_id.email` when dot-walked) or `servicenow:user:<sys_id>`.

use serde_json::{Map, Value};

use mfascope_core::ticket::Ticket;

use super::{parse_time, text};

/// A field's text: the display value when the API returned both, else the value.
fn field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::Object(o) => text(o, "display_value").or_else(|| text(o, "value")),
        _ => text(obj, key),
    }
}

/// A reference field's raw value (`sys_id`).
fn reference(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::Object(o) => text(o, "value"),
        _ => text(obj, key),
    }
}

pub(super) fn map(obj: &Map<String, Value>) -> Result<Ticket, String> {
    let id = field(obj, "number")
        .or_else(|| reference(obj, "sys_id"))
        .ok_or("number: missing (and no sys_id)")?;
    // Raw values are UTC; display values are in the API user's zone, so prefer raw ones.
    let time = |key: &str| reference(obj, key).map(|s| parse_time(key, &s)).transpose();
    let created = time("sys_created_on")?
        .or(time("opened_at")?)
        .ok_or("sys_created_on: missing (and no opened_at)")?;
    let requester = field(obj, "caller_id.email")
        .or_else(|| reference(obj, "caller_id").map(|id| format!("servicenow:user:{id}")));
    let mut tags: Vec<String> = field(obj, "subcategory").into_iter().collect();
    if let Some(t) = field(obj, "sys_tags") {
        tags.extend(t.split(',').map(|s| s.trim().to_string()));
    }
    Ok(Ticket {
        id,
        created,
        updated: time("sys_updated_on")?,
        system: "servicenow",
        requester,
        subject: field(obj, "short_description"),
        status: field(obj, "state"),
        category: field(obj, "category"),
        tags,
        match_reason: None,
    })
}
