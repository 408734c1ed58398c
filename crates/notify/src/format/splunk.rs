//! Splunk HTTP Event Collector (`POST …/services/collector/event`): one HEC event object per
//! notification, concatenated, with `Authorization: Splunk <token>`. The event is the generic
//! body (version 1) without its signature; `time` is the notification's event time.

use super::Request;
use crate::notification::Notification;
use crate::secret::Secret;

pub(super) fn request(items: &[Notification], token: &Secret) -> Request {
    let mut body = Vec::new();
    for n in items {
        let mut event = serde_json::to_value(n).expect("notifications serialize");
        event["id"] = n.key().into();
        event["summary"] = n.summary().into();
        let sourcetype = match n {
            Notification::Finding { .. } => "mfascope:finding",
            Notification::SloAlert(_) => "mfascope:slo_alert",
        };
        let hec = serde_json::json!({
            "time": n.time_ms() as f64 / 1000.0,
            "source": "mfascope",
            "sourcetype": sourcetype,
            "event": event,
        });
        serde_json::to_writer(&mut body, &hec).expect("JSON values serialize");
        body.push(b'\n');
    }
    Request {
        body,
        headers: vec![("Authorization", format!("Splunk {}", token.expose_str()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{episode, finding};

    #[test]
    fn one_event_object_per_notification_with_the_token_header() {
        let mut items = Notification::episode(&episode(true), None);
        items.push(Notification::finding(finding(), None));
        let r = request(&items, &Secret::new("tok"));
        let events: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&r.body)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2]["sourcetype"], "mfascope:finding");
        assert_eq!(events[2]["time"], 1_714_655_100.0);
        assert_eq!(r.headers[0].1, "Splunk tok");
    }
}
