//! Live state brought back when a file ingest starts on a store that already holds events, so a
//! restart (or a crash) shows what one uninterrupted run would have: the SLO aggregator from the
//! stored events of its retention, and the rule engine from the state saved with the last
//! committed segment plus the event files committed after it. When that state is missing,
//! stale, damaged or taken with other rules, the rule engine is rebuilt from stored events
//! instead (never started empty): the per-user history from the successful logins of its TTL,
//! the correlation windows and suppression from every event of the longest window or
//! suppression period. This module only reads; it never writes to the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::detect::stream::{LiveDetector, LiveRules, STATE_NAME};
use crate::detect::{DetectConfig, Detector, Restored, RuleSet};
use crate::event::col;
use crate::observe::BatchObserver;
use crate::pipeline::ScopeObservers;
use crate::pipeline::kafka::KAFKA_STATE;
use crate::sink::parquet::read_events;
use crate::sink::state::{Checkpoint, observer_state_rel, read_observer_state};
use crate::sink::{Location, OutDir, SinkError};
use crate::sli::live::Aggregator;
use crate::source::FILE_STATE;

/// How the rule engine's state was brought back.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RulesResumed {
    /// `saved` (the saved state, then the files committed after it), `rebuilt` (from stored
    /// events, see the module comment) or `empty` (nothing stored yet).
    pub from: &'static str,
    /// Bytes of the saved state read.
    pub state_bytes: u64,
    /// Stored events replayed through the rule engine.
    pub replayed_events: u64,
    /// Stored successful logins the per-user history learned from (rebuilds only).
    pub history_events: u64,
    /// Milliseconds from start to ready.
    pub millis: u64,
    /// Why the saved state was not used, when it was not (also logged as a warning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Roll interrupted commits forward — the file state's, and every Kafka partition's — where
/// no running instance holds the state (one that does rolls its own forward: an instance
/// starting beside this one may hold any of them for a moment), so the store holds exactly
/// what the checkpoints say before live state is resumed from it. A file run's own claim on
/// the file state comes later, when its source opens it, and reports a lock held for good.
pub fn settle(out: &Location) -> anyhow::Result<()> {
    let intents = out
        .files_under(KAFKA_STATE, "/pending.json")
        .with_context(|| format!("listing {}", out.describe(KAFKA_STATE)))?;
    let partitions = intents
        .iter()
        .map(|intent| intent.trim_end_matches("/pending.json"));
    for scope in std::iter::once(FILE_STATE).chain(partitions) {
        match OutDir::open_scoped(out, scope) {
            Ok(_) | Err(SinkError::Locked(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("opening {}", out.describe(scope))),
        }
    }
    Ok(())
}

/// Start `agg` from the events stored under `out` (see [`crate::sli::resume`]).
pub fn slos(out: &Location, agg: &mut Aggregator) -> anyhow::Result<()> {
    let replayed = crate::query_runtime()?
        .block_on(crate::sli::resume(out, agg))
        .with_context(|| format!("resuming the live SLO state from the events under {out}"))?;
    if replayed > 0 {
        tracing::info!(
            events = replayed,
            "live SLO state resumed from the stored events"
        );
    }
    Ok(())
}

/// Opens the rule engine of each scope as the ingest engine opens it — a file ingest's store,
/// or a Kafka partition, whose new owner continues from the state its old owner saved with its
/// last commit — brought to that scope's checkpoint (see the module comment).
pub struct ScopedRules {
    live: Arc<LiveRules>,
    /// The engine compiled by [`ScopedRules::new`], until a scope takes it.
    spare: Mutex<Option<Detector>>,
    rules: RuleSet,
    config: DetectConfig,
    idle_release: Option<Duration>,
    resumed: Mutex<BTreeMap<String, RulesResumed>>,
}

impl ScopedRules {
    /// Detectors running `rules` with `config`, storing through `live`'s store; with
    /// `idle_release`, each evaluates what waits for the watermark once its input is quiet.
    /// The rules are compiled here, so rules that cannot compile fail before any input is read
    /// (that first engine serves the first scope).
    pub fn new(
        live: Arc<LiveRules>,
        rules: &RuleSet,
        config: DetectConfig,
        idle_release: Option<Duration>,
    ) -> anyhow::Result<Self> {
        Ok(ScopedRules {
            live,
            spare: Mutex::new(Some(Detector::new(rules, config, false)?)),
            rules: rules.clone(),
            config,
            idle_release,
            resumed: Mutex::default(),
        })
    }

    /// How each scope's rule state was brought back, by scope.
    pub fn resumed(&self) -> BTreeMap<String, RulesResumed> {
        crate::sync::lock(&self.resumed).clone()
    }

    fn open_detector(&self, out: &OutDir) -> anyhow::Result<Arc<LiveDetector>> {
        let store = self.live.store();
        store.refresh().map_err(anyhow::Error::msg)?;
        let engine = match crate::sync::lock(&self.spare).take() {
            Some(engine) => engine,
            None => Detector::new(&self.rules, self.config, false)?,
        };
        let mut detector = LiveDetector::new(engine, store);
        if let Some(after) = self.idle_release {
            detector = detector.release_when_idle(after);
        }
        let detector = Arc::new(detector);
        let resumed = rules(&out.root, out.scope(), &out.checkpoint, &detector)?;
        crate::sync::lock(&self.resumed).insert(out.scope().to_string(), resumed);
        self.live.add(out.scope(), detector.clone());
        Ok(detector)
    }
}

impl ScopeObservers for ScopedRules {
    fn open(&self, out: &OutDir) -> Result<Arc<dyn BatchObserver>, String> {
        self.open_detector(out)
            .map(|d| d as Arc<dyn BatchObserver>)
            .map_err(|e| {
                format!(
                    "bringing back the rule engine's state of {}: {e:#}",
                    out.root.describe(out.scope())
                )
            })
    }
}

/// Bring `detector` to the state an uninterrupted run would have at `checkpoint`, the one of
/// the state `scope` under `out`.
fn rules(
    out: &Location,
    scope: &str,
    checkpoint: &Checkpoint,
    detector: &LiveDetector,
) -> anyhow::Result<RulesResumed> {
    let started = Instant::now();
    let file = out.describe(&observer_state_rel(scope, STATE_NAME));
    let mut resumed = RulesResumed::default();
    let saved = checkpoint.saved.iter().any(|n| n == STATE_NAME);
    let restored = if saved {
        match read_observer_state(out, scope, STATE_NAME)? {
            Some(bytes) => {
                resumed.state_bytes = bytes.len() as u64;
                detector.restore(&bytes).map_err(|e| e.to_string())
            }
            None => Err("the checkpoint names it but it is missing".to_string()),
        }
    } else {
        Err("no saved state goes with the last commit".to_string())
    };
    match restored {
        Ok(Restored {
            rules_changed: false,
            ..
        }) => {
            resumed.from = "saved";
            for rel in &checkpoint.replay {
                for batch in read_events(out, rel)? {
                    resumed.replayed_events += batch.num_rows() as u64;
                    BatchObserver::observe(detector, &batch);
                }
            }
        }
        Ok(Restored {
            rules_changed: true,
            ..
        }) => {
            resumed.warning = Some(format!(
                "{file}: taken with other rules; the per-user history is kept, the correlation \
                 windows are rebuilt from the stored events"
            ));
            rebuild(out, detector, false, &mut resumed)?;
        }
        // Nothing committed in this scope yet: nothing to continue (the store's events, if
        // any, are other scopes').
        Err(_) if checkpoint.segments == 0 => resumed.from = "empty",
        Err(reason) => {
            resumed.warning = Some(format!(
                "{file}: {reason}; rebuilding the rule engine's state from the stored events"
            ));
            rebuild(out, detector, true, &mut resumed)?;
        }
    }
    if let Some(w) = &resumed.warning {
        tracing::warn!("rule state: {w}");
    }
    resumed.millis = started.elapsed().as_millis() as u64;
    detector.restored_in(resumed.millis);
    Ok(resumed)
}

/// Rebuild the rule engine's state from the stored events: with `history`, the per-user
/// history learns from the successful logins of its TTL before the correlation span; then
/// every event of the correlation span runs through the engine (findings already stored are
/// not stored again).
fn rebuild(
    out: &Location,
    detector: &LiveDetector,
    history: bool,
    resumed: &mut RulesResumed,
) -> anyhow::Result<()> {
    let runtime = crate::query_runtime()?;
    let Some(latest) = runtime.block_on(crate::sli::latest_event(out))? else {
        resumed.from = "empty";
        return Ok(());
    };
    resumed.from = "rebuilt";
    let (span, ttl) = detector.spans_ms();
    let start = latest.saturating_sub(span);
    runtime.block_on(async {
        if history {
            resumed.history_events = crate::sli::for_each_stored(
                out,
                (Some(latest.saturating_sub(ttl)), Some(start)),
                &[
                    col::TIME,
                    col::EVENT_ID,
                    col::USER,
                    col::ACTION,
                    col::OUTCOME,
                    col::SRC_IP,
                    col::COUNTRY,
                    col::DEVICE_ID,
                ],
                Some("outcome = 'success' AND action IN ('mfa_verify', 'primary_auth', 'session_start')"),
                |b| detector.learn_history(b),
            )
            .await?;
        }
        resumed.replayed_events = crate::sli::for_each_stored(
            out,
            (Some(start), None),
            col::ALL,
            None,
            |b| BatchObserver::observe(detector, b),
        )
        .await?;
        Ok::<_, crate::sli::SliError>(())
    })
    .with_context(|| format!("rebuilding the rule engine's state from the events under {out}"))
}
