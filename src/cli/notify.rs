//! Delivery flags (`--alertmanager`, `--notify …`) shared by `ingest` and the live dashboard,
//! and `mfascope notify status|retry` over the outboxes a run left under `OUT/_state/notify`.

use crate::cli::out::{out, outln};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::OutputFormat;
use crate::delivery::DeliveryConfig;
use crate::sink::Location;
use mfascope_notify::format::{Context as RenderContext, Format};
use mfascope_notify::outbox::{Limits, Outbox};
use mfascope_notify::{Notifier, Options, ReceiverConfig, ReceiverStatus, Secret};

/// Where findings and SLO alerts are delivered.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeliveryArgs {
    /// Alertmanager to push SLO alert episodes and findings to (API v2), e.g.
    /// `http://127.0.0.1:9093`; repeat it for each member of an HA pair.
    #[arg(long = "alertmanager", value_name = "URL")]
    pub alertmanager: Vec<String>,
    /// Webhook receiving findings and SLO alert episodes: a URL, or `env:VAR` / `file:PATH` when
    /// the URL is itself a credential (Slack); repeatable.
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,
    /// Format of each --notify: one for all, or one per --notify in order.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub notify_format: Vec<Format>,
    /// Secret of each --notify, as `file:PATH` or `env:VAR`: the HMAC-SHA256 signing key
    /// (generic), the HEC token (splunk-hec), the routing key (pagerduty). One for all, or one
    /// per --notify in order.
    #[arg(long, value_name = "file:PATH|env:VAR")]
    pub notify_key: Vec<String>,
    /// Base URL of this mfascope for links in payloads (`generatorURL`, Slack and PagerDuty
    /// links).
    #[arg(long, value_name = "URL")]
    pub external_url: Option<String>,
    /// How long an ending run waits for its receivers to take what is queued; the rest stays
    /// in the outbox for the next run (or `mfascope notify retry`).
    #[arg(long, default_value = "30s", value_parser = crate::time::parse_duration)]
    pub notify_drain: Duration,
    /// Most notifications waiting per receiver; more are parked as overflow (counted on
    /// /metrics, listed by `notify status`).
    #[arg(long, default_value_t = Limits::default().max_queued)]
    pub outbox_max: usize,
    /// Oldest a waiting notification may get before it is parked as expired.
    #[arg(long, default_value = "7d", value_parser = crate::time::parse_duration)]
    pub outbox_max_age: Duration,
    /// Longest wait between retries to a receiver that is down (backoff doubles from 1s).
    #[arg(long, default_value = "5m", value_parser = crate::time::parse_duration)]
    pub notify_max_backoff: Duration,
    /// Local directory of the outboxes [default: OUT/_state/notify, on OUT's object store when
    /// OUT is one].
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|_| "one of alertmanager, generic, slack, pagerduty, splunk-hec, ocsf".to_string())
}

impl DeliveryArgs {
    /// The receivers and delivery options; `None` when no receiver is configured.
    pub fn config(&self) -> anyhow::Result<Option<DeliveryConfig>> {
        let ctx = |key: Option<Secret>| RenderContext {
            key,
            external_url: self.external_url.clone(),
        };
        let mut receivers = Vec::new();
        for url in &self.alertmanager {
            let url = url.trim_end_matches('/');
            let url = if url.ends_with("/api/v2/alerts") {
                url.to_string()
            } else {
                format!("{url}/api/v2/alerts")
            };
            let mut r = ReceiverConfig::new(Format::Alertmanager, &url);
            r.ctx = ctx(None);
            receivers.push(r);
        }
        let n = self.notify.len();
        let pick = |list: usize, what: &str| -> anyhow::Result<()> {
            if list > 1 && list != n {
                anyhow::bail!(
                    "{what} is given {list} times for {n} --notify: give it once, or once per --notify"
                );
            }
            Ok(())
        };
        pick(self.notify_format.len(), "--notify-format")?;
        pick(self.notify_key.len(), "--notify-key")?;
        for (i, url) in self.notify.iter().enumerate() {
            let format = nth(&self.notify_format, i)
                .copied()
                .unwrap_or(Format::Generic);
            let url = if url.starts_with("env:") || url.starts_with("file:") {
                Secret::read(url)
                    .with_context(|| format!("--notify #{}", i + 1))?
                    .expose_str()
            } else {
                url.clone()
            };
            let key = nth(&self.notify_key, i)
                .map(|k| Secret::read(k).with_context(|| format!("--notify-key #{}", i + 1)))
                .transpose()?;
            receivers.push(ReceiverConfig {
                format,
                url: Secret::new(url),
                ctx: ctx(key),
            });
        }
        if receivers.is_empty() {
            if !self.notify_format.is_empty() || !self.notify_key.is_empty() {
                anyhow::bail!("--notify-format and --notify-key describe a --notify URL: give one");
            }
            return Ok(None);
        }
        Ok(Some(DeliveryConfig {
            receivers,
            options: Options {
                limits: Limits {
                    max_queued: self.outbox_max.max(1),
                    max_age_ms: self.outbox_max_age.as_millis() as i64,
                },
                max_backoff: self.notify_max_backoff.max(Duration::from_secs(1)),
                ..Options::default()
            },
            drain: self.notify_drain,
            outbox: self.outbox.clone(),
        }))
    }
}

/// One value for all, or the `i`-th.
fn nth<T>(list: &[T], i: usize) -> Option<&T> {
    match list.len() {
        0 => None,
        1 => list.first(),
        _ => list.get(i),
    }
}

/// `mfascope notify`.
#[derive(clap::Args, Debug)]
pub struct NotifyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NotifyCommand,
}

/// The verbs of `mfascope notify`.
#[derive(clap::Subcommand, Debug)]
pub enum NotifyCommand {
    /// Each receiver's outbox: waiting and parked notifications, and why they were parked.
    Status(NotifyStatusArgs),
    /// Send parked notifications again: back into their outbox, delivered now to the receivers
    /// given (the same flags as `ingest`), or by the next run.
    Retry(Box<NotifyRetryArgs>),
}

/// `mfascope notify status`.
#[derive(clap::Args, Debug)]
pub struct NotifyStatusArgs {
    /// Output of `mfascope ingest`.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Directory of the outboxes [default: DATA/_state/notify].
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// `mfascope notify retry`.
#[derive(clap::Args, Debug)]
pub struct NotifyRetryArgs {
    /// Output of `mfascope ingest`.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Only this receiver's (its id, as `notify status` shows it).
    #[arg(long)]
    pub receiver: Option<String>,
    /// Only notifications whose idempotency key starts with this (`finding/`, `slo/mfa-availability/`).
    #[arg(long)]
    pub key: Option<String>,
    /// Receivers to deliver to now.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Run `mfascope notify …`.
pub fn run(a: NotifyArgs) -> anyhow::Result<i32> {
    match a.command {
        NotifyCommand::Status(s) => status(s),
        NotifyCommand::Retry(r) => retry(*r),
    }
}

fn outbox_root(data: &Location, outbox: Option<PathBuf>) -> mfascope_notify::OutboxRoot {
    DeliveryConfig {
        outbox,
        ..DeliveryConfig::default()
    }
    .outbox_root(data)
}

fn status(a: NotifyStatusArgs) -> anyhow::Result<i32> {
    let dir = outbox_root(&a.data, a.outbox);
    let mut shown = Vec::new();
    for info in mfascope_notify::outbox::receivers(&dir)? {
        let o = Outbox::open(&dir, info, Limits::default())?;
        shown.push((
            ReceiverStatus {
                receiver: o.info().clone(),
                queued: o.len(),
                parked: o.parked_len(),
                oldest_ms: o
                    .oldest_ms()
                    .map(|t| chrono::Utc::now().timestamp_millis() - t),
                ..ReceiverStatus::default()
            },
            o.parked()?,
        ));
    }
    match a.format {
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = shown
                .iter()
                .map(|(s, parked)| {
                    serde_json::json!({
                        "receiver": s.receiver, "queued": s.queued, "parked": s.parked,
                        "oldest_ms": s.oldest_ms,
                        "parked_notifications": parked.iter().map(|p| serde_json::json!({
                            "key": p.key, "reason": p.reason, "status": p.status,
                            "response": p.response,
                            "parked_at": crate::time::format_rfc3339(p.parked_ms),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Table => out!("{}", crate::present::notify_status(&shown)),
    }
    Ok(0)
}

fn retry(a: NotifyRetryArgs) -> anyhow::Result<i32> {
    let dir = outbox_root(&a.data, a.delivery.outbox.clone());
    let now = chrono::Utc::now().timestamp_millis();
    let mut requeued = 0;
    for info in mfascope_notify::outbox::receivers(&dir)? {
        if a.receiver.as_ref().is_some_and(|r| *r != info.id) {
            continue;
        }
        let mut o = Outbox::open(&dir, info, Limits::default())?;
        let n = o.requeue_parked(a.key.as_deref(), now)?;
        if n > 0 {
            eprintln!(
                "{n} parked notification(s) back in the outbox of {}",
                o.info().id
            );
        }
        requeued += n;
    }
    let Some(config) = a.delivery.config()? else {
        eprintln!(
            "{requeued} notification(s) requeued; the next run with their receivers delivers them"
        );
        return Ok(0);
    };
    let notifier = Notifier::start(&dir, config.receivers, config.options)?;
    let status = notifier.finish(config.drain);
    out!("{}", crate::present::delivery_table(&status));
    let left: usize = status.iter().map(|s| s.queued).sum();
    Ok(i32::from(left > 0))
}
