//! `mfascope dashboard`: the views over stored history, or live — the ingest pipeline running
//! in-process (`--follow`, `--kafka`), so the same batches reach Parquet, the rule engine and
//! the dashboard's state. Frames are drawn from bounded state only ([`Model`], [`FindingLog`]);
//! stored Parquet is read once at start and again when the filter changes.

use crate::cli::out::{out, outln};

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::DashboardArgs;
use super::detect::detect_history;
use super::ingest::LIVE_ALLOWANCE;
use super::sli::runtime;
use crate::attack::AttackPolicy;
use crate::detect::stream::FindingTap;
use crate::detect::{DetectConfig, RuleSet};
use crate::metrics::PipelineProgress;
use crate::pipeline::{IngestOptions, stop_on_signals};
use crate::present::{ingest_table, kafka_table};
use crate::run::{Run, RunReport, Running};
use crate::sink::Location;
use crate::sli::{Bucket, Engine, Params};
use crate::slo::{Slo, evaluate};
use crate::sync::lock;
use crate::tui::app::{App, Filter, Key};
use crate::tui::model::{FindingLog, Model};
use crate::tui::render::{Snapshot, Status, Theme, draw};

/// Where the interactive dashboard's diagnostics go without `--log-file`.
pub fn default_log_file() -> PathBuf {
    std::env::temp_dir().join("mfascope-dashboard.log")
}

/// Run the dashboard.
pub fn run(a: DashboardArgs) -> anyhow::Result<i32> {
    let views = crate::tui::spec::load(a.dashboards.as_deref())?;
    let mut app = App::new(views, a.view.as_deref()).map_err(anyhow::Error::msg)?;
    let slos = a.slos.resolve()?;
    let rules = a.rules.load()?;
    let policy = a.slos.attack.policy();
    let live = !a.follow.is_empty() || a.kafka.kafka.is_some();
    let stored = a
        .data
        .has_file_under("events", ".parquet")
        .with_context(|| format!("listing {}", a.data))?;
    if !live && !stored {
        anyhow::bail!(
            "no events under {}: ingest first (`mfascope ingest … --out {0}`), or watch live \
             with --follow PATH or --kafka",
            a.data
        );
    }
    let as_of = super::parse_as_of(a.as_of.as_deref())?;
    let mut dash = Dashboard {
        data: a.data.clone(),
        as_of,
        model: Arc::new(Mutex::new(Model::new(
            Filter::default(),
            policy.aggregator(&slos, &rules)?,
        ))),
        policy,
        rule_runbooks: rules.runbooks(),
        rules: rules.clone(),
        findings: Arc::default(),
        changed: Arc::default(),
        source: if live {
            match &a.kafka.kafka {
                Some(_) => format!("kafka {}", a.kafka.topic.join(",")),
                None => format!("follow {}", a.follow.join(" ")),
            }
        } else {
            match &a.as_of {
                Some(v) => format!("history {} as of {v}", a.data),
                None => format!("history {}", a.data),
            }
        },
        slos,
        live: None,
        stop: Arc::default(),
    };
    if stored {
        dash.replay()?;
        let (findings, _, _) =
            detect_history(&a.data, None, None, as_of, &rules, DetectConfig::default())?;
        lock(&dash.findings).push(&findings);
    }
    let theme = Theme::from_env();
    if a.snapshot {
        let (w, h) = a.size;
        let text = dash.frame(|snap| snapshot_text(&mut app, snap, theme, w, h))?;
        outln!("{text}");
        return Ok(0);
    }
    dash.stop = stop_on_signals().context("installing signal handlers")?;
    if live {
        dash.start_ingest(&a, &rules)?;
    }
    let result = interactive(&mut app, &mut dash, theme, a.refresh);
    let ended = dash.stop_ingest();
    result?;
    ended
}

/// The live in-process ingest.
struct LiveIngest {
    progress: Arc<PipelineProgress>,
    /// The run while it lasts.
    running: Option<Running>,
    /// The run's result once it ended by itself (an error, or the end of a Kafka backfill).
    ended: Option<anyhow::Result<RunReport>>,
    rate: Rate,
}

/// Events per second over the last few seconds, from the pipeline's running count.
#[derive(Default)]
struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    const SPAN: Duration = Duration::from_secs(5);

    fn sample(&mut self, events: u64) -> Option<f64> {
        let now = Instant::now();
        self.samples.push_back((now, events));
        while self.samples.len() > 2 && now - self.samples[0].0 > Self::SPAN {
            self.samples.pop_front();
        }
        let (t0, n0) = *self.samples.front()?;
        let secs = (now - t0).as_secs_f64();
        (secs >= 0.5).then(|| events.saturating_sub(n0) as f64 / secs)
    }
}

/// The dashboard's state and, in live mode, the ingest feeding it.
struct Dashboard {
    data: Location,
    /// The table version replayed (the latest, live).
    as_of: crate::sli::AsOf,
    slos: Vec<Slo>,
    /// Attack traffic of the model's aggregator, and the rules it is drawn from.
    policy: AttackPolicy,
    rules: RuleSet,
    /// Runbooks of the rules (rule id → URL), for the findings' detail pane.
    rule_runbooks: HashMap<String, String>,
    model: Arc<Mutex<Model>>,
    findings: Arc<Mutex<FindingLog>>,
    /// Bumped when findings arrive: the frame is redrawn at once, not at the next refresh.
    changed: Arc<AtomicU64>,
    source: String,
    live: Option<LiveIngest>,
    /// Set by SIGINT/SIGTERM, or on quit: stops the dashboard and the ingest.
    stop: Arc<AtomicBool>,
}

impl Dashboard {
    /// Replay the stored events (those passing the model's filter) into the model. In live
    /// mode the pipeline waits meanwhile (it feeds the same model).
    fn replay(&self) -> anyhow::Result<()> {
        if !self.data.has_file_under("events", ".parquet")? {
            return Ok(());
        }
        let mut model = lock(&self.model);
        let params = Params::new(None, None, Bucket::Hour, vec![])?.as_of(self.as_of);
        runtime()?.block_on(async {
            let engine = Engine::open(&self.data, &params).await?;
            engine
                .for_each_canonical(
                    "dashboard",
                    "SELECT * FROM events ORDER BY time",
                    crate::event::col::ALL,
                    |b| model.observe(b),
                )
                .await?;
            engine
                .replay_tickets(|b| {
                    crate::observe::ObserveBatch::observe_ticket_batch(&mut *model, b);
                })
                .await
        })?;
        Ok(())
    }

    /// Narrow the panels to `filter`: the model is rebuilt from the stored events (live, new
    /// events keep arriving into it).
    fn refilter(&self, filter: &Filter) -> anyhow::Result<()> {
        {
            let mut model = lock(&self.model);
            if model.filter == *filter {
                return Ok(());
            }
            let agg = self.policy.aggregator(&self.slos, &self.rules)?;
            *model = Model::new(filter.clone(), agg);
        }
        self.replay()
    }

    /// Start the ingest into `--data` on its own thread, feeding the model and the rule
    /// engine (whose findings also go to the dashboard's log).
    fn start_ingest(&mut self, a: &DashboardArgs, rules: &RuleSet) -> anyhow::Result<()> {
        let mut opts = IngestOptions::new(a.follow.clone(), a.data.clone());
        opts.format = a.log_format;
        opts.reader.follow = true;
        opts.max_latency = a.max_latency;
        opts.progress = false;
        opts.keep_raw = !rules.collection(false).rules.is_empty();
        super::ingest::pseudonymize(&mut opts, a.privacy.pseudonymize_key.as_deref(), rules)?;
        let (log, changed) = (self.findings.clone(), self.changed.clone());
        let tap: FindingTap = Box::new(move |new| {
            lock(&log).push(new);
            changed.fetch_add(1, Ordering::Relaxed);
        });
        let detect = DetectConfig {
            allowance_ms: LIVE_ALLOWANCE.as_millis() as i64,
            ..DetectConfig::default()
        };
        let mut run = Run::new(opts)
            .kafka(a.kafka.clone().options())
            // The model was rebuilt from the stored events (`replay`).
            .resume_slos(false)
            .observer(self.model.clone())
            .rules(rules, detect)
            .tap(tap);
        if let Some(delivery) = a.delivery.config()? {
            // Delivery evaluates the SLOs over the run's own aggregator (the stored events
            // are replayed into it), as `ingest` does.
            run = run
                .slos(&self.slos)
                .resume_slos(true)
                .attack(&self.policy)
                .deliver(Some(delivery));
        }
        let running = run.start(self.stop.clone())?;
        self.live = Some(LiveIngest {
            progress: running.progress(),
            running: Some(running),
            ended: None,
            rate: Rate::default(),
        });
        Ok(())
    }

    /// Stop the live ingest (it commits what it has), store the findings, print the ingest
    /// summary; the exit code (1 when the ingest failed).
    fn stop_ingest(&mut self) -> anyhow::Result<i32> {
        let Some(mut live) = self.live.take() else {
            return Ok(0);
        };
        self.stop.store(true, Ordering::Relaxed);
        let ended = match live.running.take() {
            Some(running) => running.finish(),
            None => live
                .ended
                .take()
                .unwrap_or_else(|| Err(anyhow::anyhow!("the ingest ended"))),
        };
        match ended {
            Ok(report) => {
                out!("{}", ingest_table(&report.summary));
                if let Some(k) = &report.kafka {
                    out!("{}", kafka_table(k));
                }
                outln!(
                    "{} findings over {} events this run ({} findings files written)",
                    report.detect.counters.findings,
                    report.detect.counters.events,
                    report.detect.files.len()
                );
                Ok(0)
            }
            Err(e) => {
                eprintln!("error: {}", super::error_text(&e));
                Ok(1)
            }
        }
    }

    /// Whether the live ingest is still running; notes its result when it ended.
    fn poll_ingest(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        if live.running.as_ref().is_some_and(Running::is_finished)
            && let Some(running) = live.running.take()
        {
            live.ended = Some(running.finish());
        }
    }

    fn status(&mut self, events: u64) -> Status {
        let mut status = Status {
            source: self.source.clone(),
            events,
            ..Status::default()
        };
        if let Some(live) = &mut self.live {
            let ingested = live.progress.events.load(Ordering::Relaxed);
            status.events_per_s = live.rate.sample(ingested);
            status.now = Some(chrono::Utc::now().timestamp_millis());
            status.lag = lock(&live.progress.kafka)
                .as_ref()
                .map(|k| k.partitions.values().filter_map(|p| p.lag).sum());
            status.error = match &live.ended {
                Some(Err(e)) => Some(super::error_text(e)),
                Some(Ok(_)) => Some("the input ended".into()),
                None => None,
            };
        }
        status
    }

    /// Build the frame's snapshot and hand it to `f`.
    fn frame<R>(&mut self, f: impl FnOnce(&Snapshot) -> R) -> R {
        self.poll_ingest();
        let events = lock(&self.model).dash.events;
        let status = self.status(events);
        let model = lock(&self.model);
        let findings = lock(&self.findings);
        let report = evaluate(&self.slos, &model.agg, None);
        f(&Snapshot {
            agg: &model.agg,
            report: &report,
            findings: &findings,
            dash: &model.dash,
            status,
            rule_runbooks: &self.rule_runbooks,
        })
    }
}

/// One frame of `w`×`h` cells as text (trailing spaces trimmed).
pub fn snapshot_text(
    app: &mut App,
    snap: &Snapshot,
    theme: Theme,
    w: u16,
    h: u16,
) -> anyhow::Result<String> {
    let mut terminal = Terminal::new(TestBackend::new(w, h))?;
    terminal.draw(|f| draw(f, app, snap, theme))?;
    let buffer = terminal.backend().buffer();
    let lines: Vec<String> = (0..h)
        .map(|y| {
            (0..w)
                .filter_map(|x| buffer.cell((x, y)).map(|c| c.symbol().to_string()))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect();
    Ok(lines.join("\n"))
}

/// The terminal key as a dashboard key.
fn key(k: event::KeyEvent) -> Option<Key> {
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// How often keys, resizes and new findings are checked for between refreshes.
const TICK: Duration = Duration::from_millis(100);

/// Draw, read keys, redraw — on a key, a resize, new findings, or every `refresh` — until
/// `q` (or SIGTERM).
fn interactive(
    app: &mut App,
    dash: &mut Dashboard,
    theme: Theme,
    refresh: Duration,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        let mut drawn_at: Option<Instant> = None;
        let mut seen = 0;
        let mut dirty = true;
        while !app.quit && !dash.stop.load(Ordering::Relaxed) {
            let changed = dash.changed.load(Ordering::Relaxed);
            if dirty || changed != seen || drawn_at.is_none_or(|t| t.elapsed() >= refresh) {
                dash.refilter(&app.filter)?;
                dash.frame(|snap| terminal.draw(|f| draw(f, app, snap, theme)).map(|_| ()))?;
                (drawn_at, seen, dirty) = (Some(Instant::now()), changed, false);
            }
            if event::poll(TICK)? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        if let Some(k) = key(k) {
                            app.handle(k);
                        }
                        dirty = true;
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
