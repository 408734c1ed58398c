//! The M5 SLI (MFA-induced support tickets) on generated and hand-made ticket exports of every
//! supported system, checked against Python + DuckDB computing it independently from the
//! exports themselves (the shipped rules file read with tomllib, the events with DuckDB).

use crate::common;

use std::path::Path;

use common::{generate, run_json};

/// Python that computes M5 per week from ticket exports (argv[3:]), the events Parquet under
/// argv[1] and the SLO episodes JSON in argv[2]; prints the rows as JSON.
const M5_PY: &str = r#"
import csv, json, re, sys, tomllib, datetime as dt, duckdb
data, episodes_path, rules_path, exports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rules = tomllib.load(open(rules_path, "rb"))
tags = {t.strip().lower() for t in rules.get("tags", [])}
cats = {c.strip().lower() for c in rules.get("categories", [])}
kws = sorted({k.strip().lower() for k in rules.get("keywords", [])}, key=lambda k: (-len(k), k))
kw = re.compile(r"(?i)(?:^|\W)(" + "|".join(re.escape(k).replace(r"\ ", r"[\s_-]+") for k in kws) + r")(?:\W|$)")
def mfa(t):
    return (any(x.strip().lower() in tags for x in t["tags"] if x.strip())
            or (t["category"] or "").strip().lower() in cats
            or bool(t["subject"] and kw.search(t["subject"])))
def when(s):
    s = s.strip()
    for f in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S"):
        try:
            t = dt.datetime.strptime(s.replace("Z", "+0000"), f)
            return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    return None
tickets = {}
def add(system, tid, created, updated, requester, subject, category, tag_list):
    c = when(created) if created else None
    if c is None:
        return  # malformed: a dead letter, not a ticket
    u = when(updated) if updated else None
    key = (system, str(tid))
    t = dict(created=c, updated=u, requester=requester, subject=subject, category=category, tags=tag_list)
    old = tickets.get(key)
    if old is None or (u or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) > (old["updated"] or dt.datetime.min.replace(tzinfo=dt.timezone.utc)):
        tickets[key] = t
for path in exports:
    if path.endswith(".csv"):
        for r in csv.DictReader(open(path, newline="")):
            add("csv", r["Ticket ID"], r["Created"], r.get("Updated"), r.get("Requester") or None,
                r.get("Subject"), r.get("Category"), [x for x in (r.get("Tags") or "").split(",")])
        continue
    doc = json.load(open(path))
    if "tickets" in doc:
        users = {u["id"]: u.get("email") for u in doc.get("users", [])}
        for t in doc["tickets"]:
            rid = t.get("requester_id")
            req = users.get(rid) or (f"zendesk:user:{rid}" if rid is not None else None)
            add("zendesk", t.get("id"), t.get("created_at"), t.get("updated_at"), req,
                t.get("subject"), t.get("type"), t.get("tags") or [])
    elif "issues" in doc:
        for i in doc["issues"]:
            f = i.get("fields")
            if not isinstance(f, dict):
                continue  # malformed: a dead letter
            rep = f.get("reporter") or {}
            req = rep.get("emailAddress") or (f"jira:user:{rep['accountId']}" if rep.get("accountId") else None)
            comps = [c["name"] for c in f.get("components") or []]
            add("jira", i.get("key"), f.get("created"), f.get("updated"), req, f.get("summary"),
                (f.get("issuetype") or {}).get("name"), (f.get("labels") or []) + comps)
    else:
        for r in doc["result"]:
            tl = ([r["subcategory"]] if r.get("subcategory") else []) + [x for x in (r.get("sys_tags") or "").split(",")]
            add("servicenow", r.get("number"), r.get("sys_created_on"), r.get("sys_updated_on"),
                r.get("caller_id.email"), r.get("short_description"), r.get("category"), tl)
con = duckdb.connect()
con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/events/dt=*/hour=*/*.parquet', hive_partitioning=false)")
known = {u.lower() for (u,) in con.sql('SELECT DISTINCT "user" FROM events').fetchall()}
active = {w: n for (w, n) in con.sql("""SELECT date_trunc('week', time AT TIME ZONE 'UTC'), COUNT(DISTINCT "user")
                                       FROM events GROUP BY 1""").fetchall()}
eps = [when(e["firing_at"].replace(".000Z", "Z")) for e in json.load(open(episodes_path))["episodes"]]
def week(t):
    d = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return dt.datetime.combine((d - dt.timedelta(days=d.weekday())).date(), dt.time())
weeks = {}
for t in tickets.values():
    w = weeks.setdefault(week(t["created"]), dict(tickets=0, mfa=0, unmatched=0, after=0))
    w["tickets"] += 1
    if mfa(t):
        w["mfa"] += 1
        w["unmatched"] += (t["requester"] or "").lower() not in known
        w["after"] += any(e <= t["created"] < e + dt.timedelta(hours=24) for e in eps)
rows = []
for w in sorted(set(weeks) | set(active)):
    k = weeks.get(w, dict(tickets=0, mfa=0, unmatched=0, after=0))
    users = active.get(w, 0)
    rows.append(dict(bucket=w.strftime("%Y-%m-%dT%H:%M:%SZ"), active_users=users, tickets=k["tickets"],
                     mfa_tickets=k["mfa"], per_1000=(1000.0 * k["mfa"] / users) if users else None,
                     share=(k["mfa"] / k["tickets"]) if k["tickets"] else None,
                     unmatched=k["unmatched"], after=k["after"]))
print(json.dumps(rows))
"#;

/// mfascope's M5 rows next to the Python computation; every figure must agree.
fn check_m5(out: &Path, exports: &[&Path]) -> Vec<serde_json::Value> {
    let dir = out.parent().unwrap();
    let data = out.display().to_string();
    let alerts = run_json(&["alerts", "--data", &data, "--format", "json"]);
    let episodes = dir.join("episodes.json");
    std::fs::write(&episodes, alerts.to_string()).unwrap();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/mfa-tickets.toml");
    let mut args: Vec<&Path> = vec![out, &episodes, &rules];
    args.extend_from_slice(exports);
    let want: Vec<serde_json::Value> = serde_json::from_slice(&common::py(M5_PY, &args)).unwrap();
    let report = run_json(&["sli", "--data", &data, "--only", "mfa_support_tickets"]);
    let got = report["queries"][0]["rows"].as_array().unwrap().clone();
    assert_eq!(got.len(), want.len(), "weeks: {got:#?}\nwant {want:#?}");
    let close = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a.is_null() && b.is_null(),
    };
    let mut prev: Option<&serde_json::Value> = None;
    for (g, w) in got.iter().zip(&want) {
        let bucket = g["bucket"].as_str().unwrap();
        assert!(
            bucket.starts_with(&w["bucket"].as_str().unwrap()[..10]),
            "{g} vs {w}"
        );
        for (ours, theirs) in [
            ("active_users", "active_users"),
            ("tickets", "tickets"),
            ("mfa_tickets", "mfa_tickets"),
            ("mfa_tickets_unmatched", "unmatched"),
            ("mfa_tickets_after_alerts", "after"),
        ] {
            assert_eq!(
                g[ours].as_u64(),
                w[theirs].as_u64(),
                "{ours} in {bucket}: {g} vs {w}"
            );
        }
        assert!(
            close(&g["mfa_tickets_per_1000_users"], &w["per_1000"]),
            "{g} vs {w}"
        );
        assert!(close(&g["mfa_share"], &w["share"]), "{g} vs {w}");
        // Week over week: this week's rate minus last week's, when both exist.
        let wow = match (
            prev.and_then(|p| p["per_1000"].as_f64()),
            w["per_1000"].as_f64(),
        ) {
            (Some(p), Some(c)) => serde_json::json!(c - p),
            _ => serde_json::Value::Null,
        };
        assert!(
            close(&g["wow_change"], &wow),
            "wow in {bucket}: {g} vs {wow}"
        );
        prev = Some(w);
    }
    got
}

#[test]
fn m5_on_generated_tickets_equals_python_and_incidents_bring_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let okta = generate(
        dir.path(),
        "okta",
        &[
            "--log-format",
            "okta",
            "--events",
            "30000",
            "--days",
            "14",
            "--seed",
            "5",
            "--incident",
            "push-outage@2024-05-08T10:00:00Z/3h",
            "--tickets",
            "zendesk",
        ],
    );
    let export = dir.path().join("okta.ndjson.tickets.json");
    let out = dir.path().join("out");
    let summary = common::ingest_json(&[&okta, &export], &out);
    let labels =
        std::fs::read_to_string(dir.path().join("okta.ndjson.tickets.labels.jsonl")).unwrap();
    let labels: Vec<serde_json::Value> = labels
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summary["tickets"].as_u64(), Some(labels.len() as u64));
    let mfa = labels.iter().filter(|l| l["mfa"] == true).count() as u64;
    assert_eq!(
        summary["mfa_tickets"].as_u64(),
        Some(mfa),
        "the classifier agrees with the labels"
    );
    assert_eq!(summary["deadletter"], 0);
    let rows = check_m5(&out, &[&export]);
    // The outage week: the alert fired and MFA tickets followed it.
    let outage = rows
        .iter()
        .find(|r| r["bucket"].as_str().unwrap().starts_with("2024-05-06"))
        .unwrap();
    assert!(
        outage["mfa_tickets_after_alerts"].as_u64().unwrap() > 0,
        "{outage}"
    );
    let quiet = rows
        .iter()
        .find(|r| r["bucket"].as_str().unwrap().starts_with("2024-04-29"))
        .unwrap();
    assert!(
        outage["mfa_tickets_per_1000_users"].as_f64()
            > quiet["mfa_tickets_per_1000_users"].as_f64(),
        "{outage} vs {quiet}"
    );
}

#[test]
fn m5_on_hand_made_exports_of_every_system_with_unknown_users_and_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A week of events for two users.
    let events: Vec<String> = (0..14)
        .map(|i| {
            let user = if i % 2 == 0 { "Ann@Example.com" } else { "bob@example.com" };
            format!(
                r#"{{"event_id":"e{i}","time":"2024-05-{:02}T09:00:00.000Z","source":"canonical","user":"{user}","action":"mfa_verify","factor":"push","outcome":"success","vendor_event_type":"t"}}"#,
                6 + i / 2
            )
        })
        .collect();
    let events_path = d.join("events.ndjson");
    std::fs::write(&events_path, events.join("\n") + "\n").unwrap();
    let zendesk = d.join("zendesk.json");
    std::fs::write(&zendesk, r#"{
  "tickets": [
    {"id": 1, "created_at": "2024-05-06T10:00:00Z", "updated_at": "2024-05-06T11:00:00Z", "subject": "Printer", "requester_id": 1, "tags": []},
    {"id": 1, "created_at": "2024-05-06T10:00:00Z", "updated_at": "2024-05-07T11:00:00Z", "subject": "Printer and my authenticator", "requester_id": 1, "tags": []},
    {"id": 2, "created_at": "2024-05-13T10:00:00Z", "subject": "Laptop", "requester_id": 2, "tags": ["2FA"]},
    {"id": 3, "created_at": "yesterday", "subject": "broken", "requester_id": 2}
  ],
  "users": [{"id": 1, "email": "ann@example.com"}],
  "end_of_stream": true
}
"#).unwrap();
    let jira = d.join("jira.json");
    std::fs::write(&jira, r#"{"startAt": 0, "total": 3, "issues": [
  {"key": "IT-1", "fields": {"summary": "Lost phone", "created": "2024-05-07T08:00:00.000+0200",
   "labels": [], "issuetype": {"name": "Request"}, "reporter": {"emailAddress": "bob@example.com"}}},
  {"key": "IT-2", "fields": {"summary": "New mouse", "created": "2024-05-08T08:00:00.000+0000",
   "labels": [], "components": [{"name": "MFA"}], "reporter": {"accountId": "x9"}}},
  {"key": "IT-3", "fields": "not an object"}
]}
"#).unwrap();
    let servicenow = d.join("servicenow.json");
    std::fs::write(&servicenow, r#"{"result": [
  {"sys_id": "a", "number": "INC1", "short_description": "VPN", "sys_created_on": "2024-05-09 12:00:00",
   "category": "Account lockout", "caller_id.email": "carol@partner.example"},
  {"sys_id": "b", "number": "INC2", "short_description": "Email", "sys_created_on": "2024-05-14 12:00:00", "category": "inquiry"},
  {"sys_id": "c", "short_description": "no number or dates"}
]}
"#).unwrap();
    let csv = d.join("tickets.csv");
    std::fs::write(
        &csv,
        "Ticket ID,Created,Updated,Requester,Subject,Status,Category,Tags\n\
         C-1,2024-05-10T09:00:00Z,,ann@example.com,\"Locked out, code 123456 rejected\",open,,\n\
         C-2,2024-05-15T09:00:00Z,,dave@example.com,Monitor,open,,\"hw,desk\"\n\
         C-3,,,ann@example.com,missing date,open,,\n",
    )
    .unwrap();
    let out = d.join("out");
    let summary = common::ingest_json(&[&events_path, &zendesk, &jira, &servicenow, &csv], &out);
    assert_eq!(summary["tickets"], 9, "{summary:#}");
    assert_eq!(summary["deadletter"], 4, "{summary:#}");
    // Each bad record is a dead letter naming its file and the field.
    let mut letters = String::new();
    for f in std::fs::read_dir(out.join("deadletter")).unwrap() {
        letters += &std::fs::read_to_string(f.unwrap().path()).unwrap();
    }
    for (file, reason) in [
        (
            "zendesk.json",
            "zendesk ticket: created_at: \\\"yesterday\\\" is not a time",
        ),
        ("jira.json", "jira ticket: fields: expected an object"),
        (
            "servicenow.json",
            "servicenow ticket: sys_created_on: missing",
        ),
        ("tickets.csv", "column \\\"Created\\\": empty creation time"),
    ] {
        assert!(
            letters.lines().any(|l| l
                .contains(&format!("\"file\":\"{}\"", d.join(file).display()))
                && l.contains(reason)),
            "{file}: {reason} not in\n{letters}"
        );
    }
    // No code from a subject reaches the table.
    let stored = String::from_utf8(common::py(
        "import sys, pyarrow.dataset as ds; print(ds.dataset(sys.argv[1], format='parquet').to_table().to_pylist())",
        &[&out.join("tickets")],
    ))
    .unwrap();
    assert!(
        !stored.contains("123456") && stored.contains("[redacted]"),
        "{stored}"
    );
    let rows = check_m5(&out, &[&zendesk, &jira, &servicenow, &csv]);
    let first = &rows[0];
    // Week of May 6: Zendesk 1 (latest version mentions the authenticator), Jira IT-1 and IT-2,
    // ServiceNow INC1 (an unknown caller), CSV C-1.
    assert_eq!(
        (first["tickets"].as_u64(), first["mfa_tickets"].as_u64()),
        (Some(5), Some(5)),
        "{first}"
    );
    assert_eq!(
        first["mfa_tickets_unmatched"], 2,
        "IT-2 (no email) and INC1 (carol): {first}"
    );
}

/// An SLO on the M5 counters: the share of tickets that are not about MFA.
const TICKET_SLO: &str = "apiVersion: openslo/v1
kind: SLO
metadata: {name: mfa-ticket-share, displayName: at most 30 % of tickets about MFA}
spec:
  service: 2fa
  indicator:
    metadata: {name: non-mfa-tickets}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: mfascope, spec: {counter: tickets_not_mfa}}}
        total: {metricSource: {type: mfascope, spec: {counter: tickets}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: share, target: 0.7}]
";

#[test]
fn m5_is_slo_able_live_and_over_history_with_the_latest_version_of_each_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let okta = generate(
        d,
        "okta",
        &[
            "--log-format",
            "okta",
            "--events",
            "8000",
            "--days",
            "5",
            "--seed",
            "6",
            "--tickets",
            "csv",
        ],
    );
    let csv = d.join("okta.ndjson.tickets.csv");
    // A second export in which ticket 10000 was re-tagged as MFA later: its latest version wins.
    let text = std::fs::read_to_string(&csv).unwrap();
    let first = text.lines().nth(1).unwrap();
    let mut cells: Vec<String> = first.split(',').map(str::to_string).collect();
    cells[2] = "2024-05-09T00:00:00.000Z".into();
    let retagged = format!("{},mfa", cells[..7].join(","));
    let again = d.join("again.csv");
    std::fs::write(
        &again,
        format!("{}\n{retagged}\n", text.lines().next().unwrap()),
    )
    .unwrap();
    let spec = d.join("slo.yaml");
    std::fs::write(&spec, TICKET_SLO).unwrap();
    let out = d.join("out");
    let data = out.display().to_string();
    let live = run_json(&[
        "ingest",
        "--no-progress",
        "--format",
        "json",
        "--slos",
        spec.to_str().unwrap(),
        "--out",
        &data,
        okta.to_str().unwrap(),
        csv.to_str().unwrap(),
        again.to_str().unwrap(),
    ]);
    let history = run_json(&[
        "slo",
        "--data",
        &data,
        "--slos",
        spec.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let status = |v: &serde_json::Value| v["slos"][0].clone();
    let (l, h) = (status(&live["live"]["slo"]), status(&history));
    assert_eq!(
        (l["good"].clone(), l["total"].clone()),
        (h["good"].clone(), h["total"].clone()),
        "live {l}\nhistory {h}"
    );
    // Independently: the labels, with ticket 10000 counted once and as MFA.
    let labels: Vec<serde_json::Value> =
        std::fs::read_to_string(d.join("okta.ndjson.tickets.labels.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let not_mfa = labels
        .iter()
        .filter(|l| l["mfa"] == false && l["id"] != cells[0].as_str())
        .count();
    assert_eq!(h["total"].as_u64(), Some(labels.len() as u64), "{h}");
    assert_eq!(h["good"].as_u64(), Some(not_mfa as u64), "{h}");
}
