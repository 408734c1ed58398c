"""Check delivered payloads against their receivers' published shapes: OCSF Detection Findings
with py-ocsf-models (an independent OCSF implementation), Slack Block Kit, PagerDuty Events
API v2 and Splunk HEC bodies with JSON Schemas written from their documentation. Reads the
receiver's JSON lines (argv[1]); prints a JSON summary; exits 1 on the first violation."""
import json, sys

import jsonschema
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

text = {"type": "object", "required": ["type", "text"],
        "properties": {"type": {"enum": ["plain_text", "mrkdwn"]}, "text": {"type": "string", "minLength": 1}}}
SLACK = {  # api.slack.com/messaging/webhooks, /reference/block-kit/blocks
    "type": "object", "required": ["text", "blocks"],
    "properties": {
        "text": {"type": "string", "maxLength": 40000},
        "blocks": {"type": "array", "maxItems": 50, "items": {"oneOf": [
            {"type": "object", "required": ["type", "text"], "properties": {
                "type": {"const": "header"},
                "text": {"type": "object", "properties": {"type": {"const": "plain_text"},
                         "text": {"type": "string", "maxLength": 150}}}}},
            {"type": "object", "required": ["type"], "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
             "properties": {"type": {"const": "section"},
                            "text": {"allOf": [text, {"properties": {"text": {"maxLength": 3000}}}]},
                            "fields": {"type": "array", "maxItems": 10,
                                       "items": {"allOf": [text, {"properties": {"text": {"maxLength": 2000}}}]}}}},
            {"type": "object", "required": ["type", "elements"], "properties": {
                "type": {"const": "context"}, "elements": {"type": "array", "maxItems": 10, "items": text}}},
        ]}},
    },
}
PAGERDUTY = {  # developer.pagerduty.com/docs/events-api-v2/trigger-events, resolve-events
    "type": "object", "required": ["routing_key", "event_action", "dedup_key"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "maxLength": 255},
        "payload": {"type": "object", "required": ["summary", "source", "severity"], "properties": {
            "summary": {"type": "string", "maxLength": 1024}, "source": {"type": "string"},
            "severity": {"enum": ["critical", "error", "warning", "info"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "custom_details": {"type": "object"}}},
        "links": {"type": "array", "items": {"type": "object", "required": ["href"]}},
    },
    "if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]},
}
HEC = {  # docs.splunk.com: Format events for HTTP Event Collector
    "type": "object", "required": ["event"],
    "properties": {"time": {"type": "number"}, "source": {"type": "string"},
                   "sourcetype": {"type": "string"}, "event": {"type": "object", "required": ["id"]}},
}

counts = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    kind = r["path"].strip("/")
    body = r["body"]
    if kind == "slack":
        jsonschema.validate(body, SLACK)
    elif kind == "pagerduty":
        jsonschema.validate(body, PAGERDUTY, format_checker=jsonschema.FormatChecker())
    elif kind == "hec":
        assert r["auth"] == "Splunk 0f3b2c1d-hec-token", "HEC Authorization header"
        # The body is HEC event objects back to back.
        decoder, s, events = json.JSONDecoder(), body if isinstance(body, str) else json.dumps(body), []
        i = 0
        while i < len(s):
            while i < len(s) and s[i].isspace():
                i += 1
            if i < len(s):
                e, i = decoder.raw_decode(s, i)
                events.append(e)
        for e in events:
            jsonschema.validate(e, HEC)
        counts["hec_events"] = counts.get("hec_events", 0) + len(events)
    elif kind == "ocsf":
        f = DetectionFinding.model_validate(body)
        assert f.class_uid == 2004 and int(f.type_uid) == 200401, (f.class_uid, f.type_uid)
        assert f.finding_info.uid and f.finding_info.title
    else:
        continue
    counts[kind] = counts.get(kind, 0) + 1
print(json.dumps(counts))
