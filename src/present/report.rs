//! The weekly and monthly reports (`mfascope report weekly|monthly`): one self-contained HTML
//! page (inline CSS and SVG charts, no network) or Markdown, laid out from figures the report
//! command gathered. It computes nothing but sums for the headline.

use std::fmt::Write;

use serde::Serialize;

use super::chart::{self, Line};
use crate::sli::posture::Posture;
use crate::slo::SloReport;
use mfascope_core::time::format_rfc3339;

/// Findings of one rule in the period.
#[derive(Clone, Debug, Serialize)]
pub struct RuleFindings {
    /// Rule title.
    pub rule: String,
    /// ATT&CK techniques.
    pub techniques: String,
    /// Sigma level.
    pub severity: String,
    /// Findings.
    pub count: u64,
}

/// The figures a reader sees first; each equals what `mfascope sli` reports for the period.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Headline {
    /// 2FA verifications (M1 attempts).
    pub attempts: u64,
    /// Successful ones.
    pub successes: u64,
    /// successes / attempts.
    pub success_rate: Option<f64>,
    /// Highest daily p95 latency (M2), ms.
    pub worst_daily_p95_ms: Option<f64>,
    /// Recovery requests (M4).
    pub recovery_requests: u64,
    /// Days flagged as recovery spikes.
    pub recovery_spike_days: u64,
    /// Support tickets created (M5).
    pub tickets: u64,
    /// MFA-related ones.
    pub mfa_tickets: u64,
    /// Phishing-resistant adoption on the last day with data (M7).
    pub adoption_last_day: Option<f64>,
    /// SLO alert episodes that fired in the period.
    pub alerts: u64,
    /// Security findings in the period.
    pub findings: u64,
}

/// Everything a report shows.
pub struct Report {
    /// `weekly` or `monthly`.
    pub kind: &'static str,
    /// Period start (epoch ms, inclusive).
    pub from: i64,
    /// Period end (epoch ms, exclusive).
    pub to: i64,
    /// Headline figures.
    pub headline: Headline,
    /// Daily success rate per factor.
    pub success: Vec<Line>,
    /// Daily p95 latency per factor.
    pub p95: Vec<Line>,
    /// Daily recovery requests per 1,000 active users, and the spike days among them.
    pub recovery: (Line, Vec<(i64, f64)>),
    /// Daily phishing-resistant adoption.
    pub adoption: Line,
    /// Weekly M5 rows: (week start, MFA tickets per 1,000 users, MFA tickets, all tickets).
    pub m5: Vec<(i64, Option<f64>, u64, u64)>,
    /// SLO status at the end of the period and the episodes that overlap it.
    pub slo: SloReport,
    /// Findings by rule.
    pub findings: Vec<RuleFindings>,
    /// Coverage posture of the period.
    pub posture: Posture,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.2} %", v * 100.0))
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;\
max-width:1000px;color:#222}h1{margin-bottom:0}.period{color:#666;margin-top:4px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}.card{border:1px solid #ddd;border-radius:6px;\
padding:10px 14px;min-width:150px}.card .v{font-size:22px;font-weight:600}.card .k{color:#666;font-size:12px}\
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}td,th{border-bottom:1px solid #eee;\
padding:4px 10px;text-align:left}th{background:#f6f6f6}.chart{margin:10px 0}.bad{color:#b00}\
@media print{.chart{break-inside:avoid}}";

impl Report {
    fn cards(&self) -> Vec<(&'static str, &'static str, String)> {
        let h = &self.headline;
        vec![
            ("success_rate", "2FA success rate", pct(h.success_rate)),
            ("attempts", "verifications", h.attempts.to_string()),
            (
                "worst_daily_p95_ms",
                "worst daily p95 latency",
                h.worst_daily_p95_ms
                    .map_or("–".into(), |v| format!("{v:.0} ms")),
            ),
            (
                "recovery_requests",
                "recovery requests",
                h.recovery_requests.to_string(),
            ),
            (
                "mfa_tickets",
                "MFA support tickets",
                format!("{} of {}", h.mfa_tickets, h.tickets),
            ),
            (
                "adoption_last_day",
                "phishing-resistant adoption",
                pct(h.adoption_last_day),
            ),
            ("alerts", "SLO alerts", h.alerts.to_string()),
            ("findings", "security findings", h.findings.to_string()),
        ]
    }

    fn title(&self) -> String {
        let kind = if self.kind == "weekly" {
            "Weekly"
        } else {
            "Monthly"
        };
        format!("{kind} 2FA report")
    }

    fn period(&self) -> String {
        format!(
            "{} to {}",
            format_rfc3339(self.from),
            format_rfc3339(self.to)
        )
    }

    fn charts(&self) -> Vec<(&'static str, String)> {
        let x = (self.from, self.to);
        let target = self
            .slo
            .slos
            .iter()
            .find(|s| s.name == "mfa-success-rate")
            .map(|s| s.target);
        let mut recovery = vec![self.recovery.0.clone()];
        if !self.recovery.1.is_empty() {
            recovery.push(Line {
                name: "spike".into(),
                points: self.recovery.1.clone(),
            });
        }
        let m5: Vec<(String, f64)> = self
            .m5
            .iter()
            .map(|(w, rate, _, _)| (format_rfc3339(*w)[5..10].to_string(), rate.unwrap_or(0.0)))
            .collect();
        let findings: Vec<(String, f64)> = self
            .findings
            .iter()
            .take(10)
            .map(|f| (short(&f.rule, 18), f.count as f64))
            .collect();
        let budgets: Vec<(String, f64)> = self
            .slo
            .slos
            .iter()
            .filter_map(|s| Some((short(&s.name, 18), s.budget_remaining? * 100.0)))
            .collect();
        vec![
            (
                "success",
                chart::lines(
                    "2FA success rate per factor (daily)",
                    "success rate",
                    x,
                    &self.success,
                    None,
                    Some(1.0),
                    target,
                ),
            ),
            (
                "p95",
                chart::lines(
                    "p95 challenge-to-verification latency per factor (daily)",
                    "ms",
                    x,
                    &self.p95,
                    Some(0.0),
                    None,
                    None,
                ),
            ),
            (
                "budgets",
                chart::bars(
                    "Error budget left at the end of the period",
                    "% of budget",
                    &budgets,
                ),
            ),
            (
                "recovery",
                chart::lines(
                    "Recovery requests per 1,000 active users (daily)",
                    "per 1k users",
                    x,
                    &recovery,
                    Some(0.0),
                    None,
                    None,
                ),
            ),
            (
                "m5",
                chart::bars(
                    "MFA support tickets per 1,000 active users (weekly)",
                    "per 1k users",
                    &m5,
                ),
            ),
            (
                "adoption",
                chart::lines(
                    "Phishing-resistant adoption (daily)",
                    "share of users",
                    x,
                    std::slice::from_ref(&self.adoption),
                    Some(0.0),
                    None,
                    None,
                ),
            ),
            (
                "findings",
                chart::bars("Findings by rule", "findings", &findings),
            ),
        ]
    }

    /// The report as one self-contained HTML page.
    pub fn html(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
            esc(&self.title())
        );
        let _ = write!(
            o,
            "<h1>{}</h1><p class=\"period\" data-from=\"{}\" data-to=\"{}\">{}</p>",
            esc(&self.title()),
            format_rfc3339(self.from),
            format_rfc3339(self.to),
            esc(&self.period())
        );
        o.push_str("<div class=\"cards\">");
        for (key, label, value) in self.cards() {
            let _ = write!(
                o,
                "<div class=\"card\"><div class=\"v\" data-figure=\"{key}\">{}</div><div class=\"k\">{}</div></div>",
                esc(&value),
                esc(label)
            );
        }
        o.push_str("</div>");
        for (id, svg) in self.charts() {
            let _ = write!(o, "<div class=\"chart\" id=\"chart-{id}\">{svg}</div>");
        }
        o.push_str("<h2>SLOs</h2><table><tr><th>SLO</th><th>objective</th><th>SLI</th><th>budget left</th><th>state</th></tr>");
        for s in &self.slo.slos {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{:.2} %</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
                esc(&s.display_name),
                s.target * 100.0,
                pct(s.sli),
                if s.violated { " class=\"bad\"" } else { "" },
                pct(s.budget_remaining),
                if s.firing.is_empty() {
                    "ok".to_string()
                } else {
                    esc(&s.firing.join(", "))
                }
            );
        }
        o.push_str("</table>");
        if let Some(line) = super::attack_traffic_line(&self.slo) {
            let _ = write!(o, "<p>{}</p>", esc(&line));
        }
        o.push_str("<h2>Alert timeline</h2>");
        table(
            &mut o,
            &[
                "SLO", "alert", "severity", "fired", "resolved", "peak", "cause",
            ],
            self.slo.episodes.iter().map(|e| {
                vec![
                    e.slo_display_name.clone(),
                    e.alert.clone(),
                    e.severity.clone(),
                    e.firing_at.clone(),
                    e.resolved_at.clone().unwrap_or_else(|| "firing".into()),
                    format!("{:.1}", e.peak),
                    cause(e),
                ]
            }),
        );
        o.push_str("<h2>Findings by rule and technique</h2>");
        table(
            &mut o,
            &["rule", "techniques", "level", "findings"],
            self.findings.iter().map(|f| {
                vec![
                    f.rule.clone(),
                    f.techniques.clone(),
                    f.severity.clone(),
                    f.count.to_string(),
                ]
            }),
        );
        o.push_str("<h2>Support tickets (M5)</h2>");
        table(
            &mut o,
            &["week", "MFA tickets", "all tickets", "per 1k users"],
            self.m5.iter().map(|(w, r, m, t)| {
                vec![
                    format_rfc3339(*w)[..10].to_string(),
                    m.to_string(),
                    t.to_string(),
                    r.map_or("–".into(), |r| format!("{r:.2}")),
                ]
            }),
        );
        let p = &self.posture;
        let _ = write!(
            o,
            "<h2>2FA coverage posture</h2><p>{}</p>",
            esc(&super::posture_headline(p))
        );
        o.push_str("<h3>Sign-ins without a second factor, by app</h3>");
        table(
            &mut o,
            &["app", "users", "sign-ins"],
            p.without_mfa_by_app
                .iter()
                .map(|a| vec![a.app.clone(), a.users.to_string(), a.sign_ins.to_string()]),
        );
        o.push_str("<h3>Privileged users without a phishing-resistant factor</h3>");
        table(
            &mut o,
            &["user", "factors", "known from"],
            p.privileged_without_phishing_resistant.iter().map(|u| {
                vec![
                    u.user.clone(),
                    u.factors
                        .clone()
                        .unwrap_or_else(|| "no verification".into()),
                    u.known_from.clone(),
                ]
            }),
        );
        o.push_str("<h3>Factor inventory</h3>");
        table(
            &mut o,
            &["factor", "users", "enrolled", "removed"],
            p.factors.iter().map(|f| {
                vec![
                    f.factor.clone(),
                    f.users.to_string(),
                    f.enrolled.to_string(),
                    f.removed.to_string(),
                ]
            }),
        );
        let _ = write!(
            o,
            "<h3>Users relying on SMS, voice or email only: {}</h3>",
            p.weak_only_users.len()
        );
        let _ = write!(
            o,
            "<h3>Break-glass account use: {}</h3>",
            p.break_glass_use.len()
        );
        table(
            &mut o,
            &["time", "account", "action", "outcome", "source IP"],
            p.break_glass_use.iter().map(|b| {
                vec![
                    b.time.clone(),
                    b.user.clone(),
                    b.action.clone(),
                    b.outcome.clone(),
                    b.src_ip.clone().unwrap_or_default(),
                ]
            }),
        );
        let _ = write!(
            o,
            "<p>SMS one-time codes: {} × {} = {:.2}</p>",
            p.sms.messages, p.sms.price_per_message, p.sms.cost
        );
        o.push_str("</body></html>\n");
        o
    }

    /// The report as Markdown (tables; the charts are in the HTML form).
    pub fn markdown(&self) -> String {
        let mut o = format!("# {}\n\n{}\n\n", self.title(), self.period());
        for (_, label, value) in self.cards() {
            let _ = writeln!(o, "- **{label}**: {value}");
        }
        o.push_str("\n## SLOs\n\n| SLO | objective | SLI | budget left |\n|---|---|---|---|\n");
        for s in &self.slo.slos {
            let _ = writeln!(
                o,
                "| {} | {:.2} % | {} | {} |",
                s.display_name,
                s.target * 100.0,
                pct(s.sli),
                pct(s.budget_remaining)
            );
        }
        if let Some(line) = super::attack_traffic_line(&self.slo) {
            let _ = writeln!(o, "\n{line}");
        }
        o.push_str(
            "\n## Alert timeline\n\n| SLO | alert | fired | resolved | cause |\n|---|---|---|---|---|\n",
        );
        for e in &self.slo.episodes {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                e.slo_display_name,
                e.alert,
                e.firing_at,
                e.resolved_at.as_deref().unwrap_or("firing"),
                cause(e)
            );
        }
        o.push_str("\n## Findings by rule\n\n| rule | techniques | findings |\n|---|---|---|\n");
        for f in &self.findings {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                f.rule.replace('|', "\\|"),
                f.techniques,
                f.count
            );
        }
        let _ = write!(
            o,
            "\n## 2FA coverage posture\n\n{}\n",
            super::posture_headline(&self.posture)
        );
        o
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn table(o: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>");
    let mut any = false;
    for r in rows {
        any = true;
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>");
    }
    if !any {
        let _ = write!(o, "<tr><td colspan=\"{}\">none</td></tr>", head.len());
    }
    o.push_str("</table>");
}

/// An episode's cause as the report states it: `attack` when attack traffic explains the burn.
fn cause(e: &crate::slo::Episode) -> String {
    if e.explained_by_attack {
        "attack".into()
    } else {
        String::new()
    }
}
