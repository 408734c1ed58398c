//! `mfascope report`: the 2FA coverage posture (`posture`) and the weekly/monthly reports over
//! stored events. The figures come from the SLI queries, the SLO evaluation, the rule engine
//! and the posture queries; this module gathers them and hands them to the presentation layer.

use crate::cli::out::{out, outln};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::detect::detect_history;
use super::sli::{range, report_slis, runtime};
use super::slo::evaluate_history;
use super::{DataRange, OutputFormat};
use crate::detect::DetectConfig;
use crate::present::chart::Line;
use crate::present::posture_table;
use crate::present::report::{Headline, Report, RuleFindings};
use crate::sli::posture::{Posture, Privileged};
use crate::sli::{Bucket, Engine, Params, resolve_queries};
use crate::time::{format_rfc3339, parse_rfc3339};

/// `mfascope report …`.
#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// 2FA coverage posture: sign-ins without a second factor (by app), SMS/voice/email-only
    /// users, privileged users without a phishing-resistant factor, factor inventory, new
    /// registrations, break-glass use, SMS volume and cost.
    Posture(PostureArgs),
    /// The last 7 days (to --to, default the end of the data) as a self-contained HTML page
    /// (inline SVG charts; `--format md` for Markdown).
    Weekly(DocumentArgs),
    /// The same over the last 30 days.
    Monthly(DocumentArgs),
}

/// `mfascope report weekly|monthly`.
#[derive(Args, Debug)]
pub struct DocumentArgs {
    /// Output of `mfascope ingest`: a directory or an object store URL.
    #[arg(long, value_parser = crate::sink::Location::parse)]
    pub data: crate::sink::Location,
    /// End of the period (RFC 3339, exclusive) [default: the end of the last day with data].
    #[arg(long)]
    pub to: Option<String>,
    /// File to write.
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// `html` (self-contained page) or `md`.
    #[arg(long, value_enum, default_value = "html")]
    pub format: DocumentFormat,
    /// Privileged and break-glass accounts for the posture section (see `report posture`).
    #[arg(long, value_name = "FILE")]
    pub privileged: Option<std::path::PathBuf>,
    /// Price of one SMS message.
    #[arg(long, default_value_t = 0.0079)]
    pub sms_price: f64,
    /// SLO specs.
    #[command(flatten)]
    pub slos: super::SlosArg,
    /// Rules for the findings section.
    #[command(flatten)]
    pub rules: super::RulesArg,
}

/// Report file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DocumentFormat {
    /// One HTML page with inline CSS and SVG.
    Html,
    /// Markdown.
    Md,
}

/// `mfascope report posture`.
#[derive(Args, Debug)]
pub struct PostureArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// Privileged and break-glass accounts: a TOML file with `users = [...]` and
    /// `break_glass = [...]` (events do not carry group membership, so list the members).
    #[arg(long, value_name = "FILE")]
    pub privileged: Option<std::path::PathBuf>,
    /// Price of one SMS message, for the cost of SMS one-time codes.
    #[arg(long, default_value_t = 0.0079)]
    pub sms_price: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Run a report command.
pub fn run(c: ReportCommand) -> anyhow::Result<i32> {
    match c {
        ReportCommand::Posture(a) => {
            let posture = posture(&a)?;
            match a.format {
                OutputFormat::Table => out!("{}", posture_table(&posture)),
                OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&posture)?),
            }
            Ok(0)
        }
        ReportCommand::Weekly(a) => write_document(&a, "weekly", 7),
        ReportCommand::Monthly(a) => write_document(&a, "monthly", 30),
    }
}

fn write_document(a: &DocumentArgs, kind: &'static str, days: i64) -> anyhow::Result<i32> {
    let report = document(a, kind, days)?;
    let text = match a.format {
        DocumentFormat::Html => report.html(),
        DocumentFormat::Md => report.markdown(),
    };
    std::fs::write(&a.out, text).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "{kind} report {} to {}: {}",
        format_rfc3339(report.from),
        format_rfc3339(report.to),
        a.out.display()
    );
    Ok(0)
}

const DAY_MS: i64 = 86_400_000;

/// Gather a report over the `days` before `--to` (or the end of the data's last day).
pub fn document(a: &DocumentArgs, kind: &'static str, days: i64) -> anyhow::Result<Report> {
    let to = match &a.to {
        Some(t) => parse_rfc3339(t)
            .map_err(anyhow::Error::msg)
            .context("--to")?,
        None => end_of_data(&a.data)?,
    };
    let from = to - days * DAY_MS;
    let queries = resolve_queries(None)?;
    let pick = |names: &[&str]| -> Vec<crate::sli::Query> {
        queries
            .iter()
            .filter(|q| names.contains(&q.name.as_str()))
            .cloned()
            .collect()
    };
    let rules = a.rules.load()?;
    let policy = a.slos.attack.policy();
    let daily = Params::new(Some(from), Some(to), Bucket::Day, vec![])?;
    let overall = report_slis(
        &a.data,
        &daily,
        &pick(&[
            "mfa_success_rate",
            "mfa_latency",
            "recovery_rate",
            "mfa_support_tickets",
            "phishing_resistant_adoption",
        ]),
        OutputFormat::Json,
        (&policy, &rules),
    )?;
    let by_factor = Params::new(Some(from), Some(to), Bucket::Day, vec!["factor".into()])?;
    let factors = report_slis(
        &a.data,
        &by_factor,
        &pick(&["mfa_success_rate", "mfa_latency"]),
        OutputFormat::Json,
        (&policy, &rules),
    )?;
    let rows = |report: &serde_json::Value, name: &str| -> Vec<serde_json::Value> {
        report["queries"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["name"] == name))
            .and_then(|q| q["rows"].as_array().cloned())
            .unwrap_or_default()
    };
    let time = |r: &serde_json::Value| {
        r["bucket"]
            .as_str()
            .and_then(|s| parse_rfc3339(&s.replace(' ', "T")).ok())
    };
    let per_factor = |name: &str, value: &str| -> Vec<Line> {
        let mut lines: Vec<Line> = Vec::new();
        for r in rows(&factors, name) {
            let (Some(t), Some(v), Some(f)) = (time(&r), r[value].as_f64(), r["factor"].as_str())
            else {
                continue;
            };
            match lines.iter_mut().find(|l| l.name == f) {
                Some(l) => l.points.push((t, v)),
                None => lines.push(Line {
                    name: f.to_string(),
                    points: vec![(t, v)],
                }),
            }
        }
        lines.sort_by_key(|l| std::cmp::Reverse(l.points.len()));
        lines.truncate(8);
        lines
    };
    let series = |name: &str, value: &str, label: &str| Line {
        name: label.to_string(),
        points: rows(&overall, name)
            .iter()
            .filter_map(|r| Some((time(r)?, r[value].as_f64()?)))
            .collect(),
    };
    let sum = |name: &str, col: &str| {
        rows(&overall, name)
            .iter()
            .filter_map(|r| r[col].as_u64())
            .sum::<u64>()
    };
    let m1 = (
        sum("mfa_success_rate", "successes"),
        sum("mfa_success_rate", "attempts"),
    );
    let recovery = rows(&overall, "recovery_rate");
    let spikes: Vec<(i64, f64)> = recovery
        .iter()
        .filter(|r| r["spike"] == true)
        .filter_map(|r| Some((time(r)?, r["per_1k_users"].as_f64()?)))
        .collect();
    let m5: Vec<(i64, Option<f64>, u64, u64)> = rows(&overall, "mfa_support_tickets")
        .iter()
        .filter_map(|r| {
            Some((
                time(r)?,
                r["mfa_tickets_per_1000_users"].as_f64(),
                r["mfa_tickets"].as_u64()?,
                r["tickets"].as_u64()?,
            ))
        })
        .collect();
    let adoption = series("phishing_resistant_adoption", "adoption", "all users");
    let slos = a.slos.resolve()?;
    let mut slo = evaluate_history(
        &a.data,
        &slos,
        None,
        Some(to),
        crate::sli::AsOf::Latest,
        (&policy, &rules),
    )?;
    slo.episodes
        .retain(|e| e.firing_ms < to && e.resolved_ms.is_none_or(|r| r >= from));
    let (found, _, _) = detect_history(
        &a.data,
        Some(from),
        Some(to),
        crate::sli::AsOf::Latest,
        &rules,
        DetectConfig::default(),
    )?;
    let mut findings: Vec<RuleFindings> = Vec::new();
    for f in &found {
        match findings.iter_mut().find(|r| r.rule == f.rule_title) {
            Some(r) => r.count += 1,
            None => findings.push(RuleFindings {
                rule: f.rule_title.clone(),
                techniques: f.attack.join(", "),
                severity: f.severity.clone(),
                count: 1,
            }),
        }
    }
    findings.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
    let posture = posture(&PostureArgs {
        range: DataRange {
            data: a.data.clone(),
            from: Some(format_rfc3339(from)),
            to: Some(format_rfc3339(to)),
            as_of: None,
        },
        privileged: a.privileged.clone(),
        sms_price: a.sms_price,
        format: OutputFormat::Json,
    })?;
    let headline = Headline {
        attempts: m1.1,
        successes: m1.0,
        success_rate: (m1.1 > 0).then(|| m1.0 as f64 / m1.1 as f64),
        worst_daily_p95_ms: rows(&overall, "mfa_latency")
            .iter()
            .filter_map(|r| r["p95_ms"].as_f64())
            .reduce(f64::max),
        recovery_requests: recovery
            .iter()
            .filter_map(|r| r["recoveries"].as_u64())
            .sum(),
        recovery_spike_days: spikes.len() as u64,
        tickets: m5.iter().map(|r| r.3).sum(),
        mfa_tickets: m5.iter().map(|r| r.2).sum(),
        adoption_last_day: adoption.points.last().map(|p| p.1),
        alerts: slo.episodes.iter().filter(|e| e.firing_ms >= from).count() as u64,
        findings: found.len() as u64,
    };
    Ok(Report {
        kind,
        from,
        to,
        headline,
        success: per_factor("mfa_success_rate", "success_rate"),
        p95: per_factor("mfa_latency", "p95_ms"),
        recovery: (
            series("recovery_rate", "per_1k_users", "requests per 1k users"),
            spikes,
        ),
        adoption,
        m5,
        slo,
        findings,
        posture,
    })
}

/// The end of the last UTC day with events.
fn end_of_data(data: &crate::sink::Location) -> anyhow::Result<i64> {
    use arrow::array::AsArray;
    let params = Params::new(None, None, Bucket::Day, vec![])?;
    let batches = runtime()?.block_on(async {
        let engine = Engine::open(data, &params).await?;
        engine.run("end", "SELECT max(time) AS t FROM events").await
    })?;
    let last = batches
        .first()
        .filter(|b| b.num_rows() > 0 && !b.column(0).is_null(0))
        .map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .value(0)
        })
        .context("no events to report on")?;
    Ok((last.div_euclid(DAY_MS) + 1) * DAY_MS)
}

/// The posture report these flags ask for.
pub fn posture(a: &PostureArgs) -> anyhow::Result<Posture> {
    let (from, to) = range(&a.range.from, &a.range.to)?;
    anyhow::ensure!(
        a.sms_price.is_finite() && a.sms_price >= 0.0,
        "--sms-price {}: give a price of zero or more",
        a.sms_price
    );
    let privileged = match &a.privileged {
        Some(p) => Privileged::load(p)?,
        None => Privileged::default(),
    };
    let params = Params::new(from, to, crate::sli::Bucket::Day, vec![])?.as_of(a.range.as_of()?);
    Ok(runtime()?.block_on(async {
        let engine = Engine::open(&a.range.data, &params).await?;
        engine.posture(&privileged, a.sms_price).await
    })?)
}
