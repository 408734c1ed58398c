//! Detection rules: Sigma detection and correlation rules (parsed and evaluated by the
//! `rsigma-parser` / `rsigma-eval` crates) over canonical events, streaming inside `ingest` and
//! over history in `mfascope detect`. This module owns the [`Detector`]: event-time ordering
//! ([`order`]), per-user history facts ([`enrich`]), which rows reach the rsigma correlation
//! engine ([`gate`], [`sequel`]) and the conversion of its results into [`Finding`]s. Both paths feed rows in `(time, event_id)`
//! order through the same code, so they produce identical findings.

pub mod attack;
pub mod backtest;
pub mod enrich;
pub mod finding;
pub mod gate;
pub mod legacy;
pub mod lint;
pub mod order;
pub mod row;
pub mod rules;
pub mod selftest;
pub mod sequel;
pub mod snapshot;
pub mod stream;
pub mod suppress;
pub mod vendor;

use rsigma_eval::{
    CorrelationConfig, CorrelationEngine, CorrelationEventMode, EvaluationResult, TimestampFallback,
};
use serde::Serialize;

use arrow::array::RecordBatch;
use mfascope_core::event::CanonicalBatch;

pub use enrich::{HistoryConfig, HistoryCounters};
pub use finding::Finding;
pub use rules::{RuleError, RuleSet};
pub use snapshot::SnapshotError;

use enrich::Enricher;
use gate::{Admit, Gate};
use order::Reorder;
use row::{BatchView, Derived, Row};
use sequel::{Sequels, result_key};

/// How often (event-time seconds) expired correlation state is dropped; the state is also
/// capped by `max_state_entries` at all times.
const EVICT_EVERY_S: i64 = 600;

/// Rule-engine failures.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Loading rules failed.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// rsigma could not compile a rule.
    #[error("compiling rules: {0} (run `mfascope rules lint` for details)")]
    Compile(String),
    /// A backtest sample log could not be read (`file:line: reason`).
    #[error("backtest sample {0}")]
    Sample(String),
    /// A suppressions file does not fit the rules.
    #[error(transparent)]
    Suppress(#[from] suppress::SuppressError),
}

/// Rule-engine settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectConfig {
    /// How long (event time) streaming waits for out-of-order events before evaluating.
    pub allowance_ms: i64,
    /// Event ids kept as evidence per finding.
    pub max_evidence: usize,
    /// Latest events referenced per correlation group (a correlation finding's evidence):
    /// rsigma reserves room for all of them in every group it opens, so this stays small.
    pub correlation_refs: usize,
    /// Correlation state entries (correlation × group key) kept at most.
    pub max_state_entries: usize,
    /// Window entries kept per group (bounds a single hot key).
    pub max_group_entries: usize,
    /// After a correlation fires for a group, identical firings are suppressed this long.
    pub suppress_secs: u64,
    /// Per-user history bounds.
    pub history: HistoryConfig,
    /// Skip rows that can only be a later step of an ordered correlation whose first step is
    /// not live for their group ([`sequel`]); findings are the same either way.
    pub skip_sequels: bool,
}

/// Users in the per-user history, and correlation groups, kept at most by default (each bound
/// separately): about 1 KB per correlation group and 0.2 KB per user, sized so a whole ingest
/// stays within 300 MB (`scripts/bench-memory`: 223 MiB on 50M events over 10M users).
/// `--max-rule-state` changes it.
pub const DEFAULT_RULE_STATE: usize = 100_000;

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            allowance_ms: 5 * 60_000,
            max_evidence: 20,
            correlation_refs: 10,
            max_state_entries: DEFAULT_RULE_STATE,
            max_group_entries: 10_000,
            suppress_secs: 3_600,
            history: HistoryConfig::default(),
            skip_sequels: true,
        }
    }
}

/// Counters of a detection run.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct DetectCounters {
    /// Events evaluated.
    pub events: u64,
    /// Events the row gate let through to the canonical rules (the rest cannot match any).
    pub gated_in: u64,
    /// Events that could only be a later step of an ordered correlation whose first step was
    /// not live for their group, so were not evaluated (see [`sequel`]).
    pub sequels_skipped: u64,
    /// Events that arrived later than the out-of-order allowance (evaluated anyway).
    pub late_events: u64,
    /// Findings produced.
    pub findings: u64,
    /// Detection and correlation rules loaded.
    pub rules: usize,
    /// Vendor-space rules among `rules` (run on raw vendor records).
    pub vendor_rules: usize,
    /// Raw vendor records that were not JSON and so skipped vendor rules.
    pub raw_unparsed: u64,
    /// Live correlation state entries at the end.
    pub correlation_state: usize,
    /// Correlation groups holding evidence references at the end. rsigma keeps them beside
    /// the groups; more of them than groups means a rule feeds a group events it does not
    /// count (see docs/detection.md): state outside `max_state_entries`.
    pub correlation_refs: usize,
    /// Correlation groups dropped at `max_state_entries` (the stalest first).
    pub correlation_evicted: u64,
    /// Per-user history state.
    pub history: HistoryCounters,
    /// Findings fired again whose id was already stored (after a restart or a replay): not
    /// stored twice (live runs only).
    pub repeats_not_stored: u64,
    /// Times the engine's state was saved with a segment (live runs only).
    pub state_saves: u64,
    /// Bytes of the last saved state.
    pub state_bytes: u64,
    /// Milliseconds the last save took (the ingest's ordering thread waits for it).
    pub state_save_ms: u64,
    /// Milliseconds the state took to restore (or rebuild) at start.
    pub state_restore_ms: u64,
}

impl DetectCounters {
    /// Add another scope's counters: counts and state sums add up, the rules loaded are the
    /// same, the slowest save is kept.
    pub fn add(&mut self, o: &DetectCounters) {
        self.events += o.events;
        self.gated_in += o.gated_in;
        self.sequels_skipped += o.sequels_skipped;
        self.late_events += o.late_events;
        self.findings += o.findings;
        self.rules = self.rules.max(o.rules);
        self.vendor_rules = self.vendor_rules.max(o.vendor_rules);
        self.raw_unparsed += o.raw_unparsed;
        self.correlation_state += o.correlation_state;
        self.correlation_refs += o.correlation_refs;
        self.correlation_evicted += o.correlation_evicted;
        self.history.users += o.history.users;
        self.history.evicted_capacity += o.history.evicted_capacity;
        self.history.expired += o.history.expired;
        self.history.displaced_values += o.history.displaced_values;
        self.repeats_not_stored += o.repeats_not_stored;
        self.state_saves += o.state_saves;
        self.state_bytes += o.state_bytes;
        self.state_save_ms = self.state_save_ms.max(o.state_save_ms);
        self.state_restore_ms += o.state_restore_ms;
    }
}

/// `batch` with its `raw` column replaced by nulls (same schema).
fn without_raw(batch: &CanonicalBatch) -> CanonicalBatch {
    let record = batch.record_batch();
    let Ok(idx) = record.schema().index_of(mfascope_core::event::col::RAW) else {
        return batch.clone();
    };
    let mut columns = record.columns().to_vec();
    columns[idx] = arrow::array::new_null_array(columns[idx].data_type(), record.num_rows());
    batch.derived(
        RecordBatch::try_new(record.schema(), columns).expect("same schema, nullable column"),
    )
}

/// Detection rules (result keys) that only feed correlations (`generate: false`): their
/// matches are not findings. rsigma's own filter compares rule ids with references by name, so
/// mfascope resolves both.
pub(crate) fn correlation_only(rules: &RuleSet) -> std::collections::HashSet<String> {
    rules
        .rules()
        .filter(|(_, rule)| {
            rules.correlations().any(|(_, c)| {
                !c.generate
                    && c.rules
                        .iter()
                        .any(|r| rule.id.as_ref() == Some(r) || rule.name.as_ref() == Some(r))
            })
        })
        .map(|(_, rule)| result_key(&rule.id, &rule.title))
        .collect()
}

/// Whether a row after `row` in the same event-time second may make a first step fire for
/// its group (or the batch ends inside that second, so a later batch might): that firing
/// still orders before `row`, as rsigma compares whole seconds.
fn same_second_follows(gate: &Gate, sequels: &Sequels, row: &Row<'_>, secs: i64) -> bool {
    let view = row.view;
    let no_facts = Derived::default();
    for j in row.i + 1..view.len() {
        if view.time.value(j).div_euclid(1000) != secs {
            return false;
        }
        let key = gate.key(view, j);
        let may_trigger = if sequels.firm_triggers() {
            gate.may_be_firm(key)
        } else {
            gate.may_admit(key)
        };
        let later = Row {
            view,
            i: j,
            derived: &no_facts,
        };
        if may_trigger && sequels.may_fire_for(row, &later) {
            return true;
        }
    }
    true
}

/// The rule engine with its state.
pub struct Detector {
    engine: CorrelationEngine,
    /// Rows no canonical rule can match skip `engine`.
    gate: Gate,
    /// Live first steps of ordered correlations, for rows the gate marks as sequels.
    sequels: Sequels,
    vendor: Option<vendor::VendorEngines>,
    enricher: Enricher,
    reorder: Reorder,
    config: DetectConfig,
    findings: Vec<Finding>,
    found: u64,
    events: u64,
    gated_in: u64,
    rules: usize,
    last_evict_s: i64,
    correlation_evicted: u64,
    /// Rule id (or title) → Sigma `name`, for findings.
    names: std::collections::HashMap<String, String>,
    /// Detection rules (id or title) that only feed correlations: see [`correlation_only()`].
    correlation_only: std::collections::HashSet<String>,
    /// Fingerprint of the rules, kept in saved state ([`snapshot`]).
    fingerprint: u64,
    /// Suppressions matched before evaluation, with their counts ([`suppress`]).
    suppressions: Option<suppress::Suppressions>,
    /// The longest correlation window of the rules, in seconds.
    longest_window_s: i64,
}

/// What [`Detector::restore_state`] brought back.
#[derive(Debug, Default)]
pub struct Restored {
    /// The state was taken with other rules: only the per-user history (and the findings not
    /// yet stored) were restored; correlation windows must be rebuilt from stored events.
    pub rules_changed: bool,
    /// Findings that had fired but were not stored when the state was saved.
    pub unstored: Vec<Finding>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Detector({:?})", self.counters())
    }
}

impl Detector {
    /// Compile the canonical-field rules of `rules`. With `emit_all_detections` every matching
    /// detection rule is reported, including those only referenced by correlations (rule
    /// tests use this); otherwise they only feed their correlations.
    ///
    /// ```
    /// use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};
    /// use mfascope_detect::{DetectConfig, Detector, RuleSet};
    ///
    /// let rules = RuleSet::resolve(None)?; // ./rules, else the built-in pack
    /// let mut detector = Detector::new(&rules, DetectConfig::default(), false)?;
    /// // Push bombing: six denied pushes for one user within five minutes.
    /// let mut events = EventBatchBuilder::default();
    /// let start = 1_714_557_600_000; // 2024-05-01T10:00:00Z
    /// for i in 0..6 {
    ///     let step = (Action::MfaVerify, Factor::Push, Outcome::Denied);
    ///     events.append(&Event::new(Source::Okta, format!("e{i}"), start + i * 50_000, "bob", "t", step));
    /// }
    /// detector.observe(&events.finish_canonical());
    /// detector.finish(); // end of input: evaluate what waits for stragglers
    /// let findings = detector.take_findings();
    /// assert!(findings.iter().any(|f| f.rule_name.as_deref() == Some("mfa_push_bombing")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        rules: &RuleSet,
        config: DetectConfig,
        emit_all_detections: bool,
    ) -> Result<Detector, DetectError> {
        let engine_config = CorrelationConfig {
            timestamp_fallback: TimestampFallback::Skip,
            max_state_entries: config.max_state_entries,
            max_group_entries: Some(config.max_group_entries),
            suppress: Some(config.suppress_secs),
            emit_detections: emit_all_detections,
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: config.correlation_refs.min(config.max_evidence),
            ..CorrelationConfig::default()
        };
        let vendor = vendor::VendorEngines::new(rules, &engine_config)?;
        let mut engine = CorrelationEngine::new(engine_config);
        let correlation_only = correlation_only(rules);
        let mut collection = rules.collection(true);
        let (sequels, sequel_only) = Sequels::of(&collection, |key| {
            !config.skip_sequels || emit_all_detections || !correlation_only.contains(key)
        });
        let gate = Gate::with_sequels(&collection.rules, |r| {
            sequel_only.contains(&result_key(&r.id, &r.title))
        });
        if let Some(s) = &rules.suppressions {
            let docs = s.filters(rules)?;
            let parsed = rsigma_parser::parse_sigma_yaml(&docs)
                .map_err(|e| DetectError::Compile(format!("suppression filters: {e}")))?;
            collection.filters.extend(parsed.filters);
        }
        collection
            .rules
            .iter_mut()
            .for_each(rules::fold_lower_case_fields);
        engine
            .add_collection(&collection)
            .map_err(|e| DetectError::Compile(e.to_string()))?;
        let names = collection
            .rules
            .iter()
            .filter_map(|r| Some((result_key(&r.id, &r.title), r.name.clone()?)))
            .chain(
                collection
                    .correlations
                    .iter()
                    .filter_map(|c| Some((result_key(&c.id, &c.title), c.name.clone()?))),
            )
            .chain(
                rules
                    .collection(false)
                    .rules
                    .iter()
                    .filter_map(|r| Some((result_key(&r.id, &r.title), r.name.clone()?))),
            )
            .collect();
        Ok(Detector {
            rules: collection.rules.len()
                + collection.correlations.len()
                + vendor.as_ref().map_or(0, vendor::VendorEngines::rules),
            engine,
            gate,
            sequels,
            vendor,
            enricher: Enricher::new(config.history),
            reorder: Reorder::new(config.allowance_ms),
            config,
            findings: Vec::new(),
            found: 0,
            events: 0,
            gated_in: 0,
            last_evict_s: i64::MIN,
            correlation_evicted: 0,
            names,
            correlation_only,
            fingerprint: snapshot::rules_fingerprint(rules, emit_all_detections),
            suppressions: rules.suppressions.clone(),
            longest_window_s: rules
                .correlations()
                .map(|(_, c)| c.timespan.seconds as i64)
                .max()
                .unwrap_or(0),
        })
    }

    /// The engine's whole state as bytes ([`snapshot`]), with `unstored`, the findings that
    /// fired but are not stored yet.
    ///
    /// ```
    /// use mfascope_core::event::{Action, Event, EventBatchBuilder, Factor, Outcome, Source};
    /// use mfascope_detect::{DetectConfig, Detector, RuleSet};
    ///
    /// let rules = RuleSet::builtin();
    /// let denial = |i: i64| {
    ///     let mut b = EventBatchBuilder::default();
    ///     let step = (Action::MfaVerify, Factor::Push, Outcome::Denied);
    ///     b.append(&Event::new(Source::Okta, format!("e{i}"), 1_714_557_600_000 + i * 50_000, "bob", "t", step));
    ///     b.finish_canonical()
    /// };
    /// let mut before = Detector::new(&rules, DetectConfig::default(), false)?;
    /// (0..3).for_each(|i| before.observe(&denial(i)));
    /// let saved = before.save_state(&[]);
    /// // A new process continues where the first one stopped: the push bombing (5 denials)
    /// // straddling the restart is found, with the denials from before it as evidence.
    /// let mut after = Detector::new(&rules, DetectConfig::default(), false)?;
    /// let restored = after.restore_state(&saved)?;
    /// assert!(!restored.rules_changed);
    /// (3..6).for_each(|i| after.observe(&denial(i)));
    /// after.finish();
    /// let bombing = after.take_findings().into_iter()
    ///     .find(|f| f.rule_name.as_deref() == Some("mfa_push_bombing")).expect("found");
    /// assert!(bombing.evidence.contains(&"e0".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_state(&self, unstored: &[Finding]) -> Vec<u8> {
        let (order, rows) = self.reorder.save();
        let body = snapshot::Body {
            engine: snapshot::Exported(&self.engine),
            vendor: self
                .vendor
                .as_ref()
                .map_or_else(Vec::new, vendor::VendorEngines::exported),
            sequels: self.sequels.save(),
            history: self.enricher.save(),
            order,
            last_evict_s: self.last_evict_s,
            correlation_evicted: self.correlation_evicted,
            unstored,
        };
        snapshot::encode(self.fingerprint, &body, rows.as_ref())
    }

    /// Continue from bytes of [`Detector::save_state`]. With the same rules everything is
    /// restored; with other rules only the per-user history is (correlation state of other
    /// rules means nothing), and [`Restored::rules_changed`] says so. On an error nothing
    /// changed.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<Restored, SnapshotError> {
        let decoded = snapshot::decode(bytes)?;
        let body = decoded.body;
        let restored = Restored {
            rules_changed: decoded.rules != self.fingerprint,
            unstored: body.unstored,
        };
        if !restored.rules_changed {
            let imported = self.engine.import_state(body.engine)
                && self
                    .vendor
                    .as_mut()
                    .is_none_or(|v| v.import_state(body.vendor));
            if !imported {
                return Err(SnapshotError::Decode(
                    "rsigma refused the correlation state's version".into(),
                ));
            }
            self.sequels.restore(body.sequels);
            self.reorder.restore(body.order, decoded.rows);
            self.last_evict_s = body.last_evict_s;
            self.correlation_evicted = body.correlation_evicted;
        }
        self.enricher.restore(body.history);
        Ok(restored)
    }

    /// The longest event-time span (ms) over which a correlation's state can still change what
    /// fires: the longest correlation window or suppression period, plus the out-of-order
    /// allowance. Replaying this much stored history rebuilds the correlation state.
    pub fn state_span_ms(&self) -> i64 {
        self.longest_window_s.max(self.config.suppress_secs as i64) * 1000
            + self.config.allowance_ms
    }

    /// Learn the per-user history from `batch` (in event-time order) without evaluating any
    /// rule: rebuilding the history from stored events older than [`Detector::state_span_ms`].
    pub fn learn_history(&mut self, batch: &CanonicalBatch) {
        let view = BatchView::of(batch);
        for i in 0..view.len() {
            self.enricher.observe(&view, i, false);
        }
    }

    /// How long (ms) the per-user history remembers an idle user.
    pub fn history_span_ms(&self) -> i64 {
        self.config.history.ttl_ms
    }

    /// Streaming entry: buffer `batch` for event-time ordering and evaluate what the
    /// watermark released.
    pub fn observe(&mut self, batch: &CanonicalBatch) {
        // Without vendor rules nothing reads `raw`, the widest column: do not buffer it.
        let slim;
        let batch = if self.vendor.is_none() {
            slim = without_raw(batch);
            &slim
        } else {
            batch
        };
        for ready in self.reorder.push(batch) {
            self.process_sorted(&ready);
        }
    }

    /// Rows waiting for the watermark.
    pub fn pending_rows(&self) -> usize {
        self.reorder.pending_rows()
    }

    /// End of input, or a live stream gone quiet: evaluate every row still waiting for the
    /// watermark (rows older than these that arrive later count as late, and are evaluated).
    pub fn finish(&mut self) {
        for rest in self.reorder.flush() {
            self.process_sorted(&rest);
        }
    }

    /// History entry: evaluate a batch already in `(time, event_id)` order.
    pub fn process_sorted(&mut self, batch: &CanonicalBatch) {
        let max_evidence = self.config.max_evidence;
        let correlation_only = std::mem::take(&mut self.correlation_only);
        let mut found = Vec::new();
        self.evaluate(
            batch,
            |_, _| {},
            |row, results| {
                found.extend(
                    results
                        .iter()
                        .filter(|r| {
                            let h = &r.header;
                            let key = h.rule_id.as_ref().unwrap_or(&h.rule_title);
                            !(r.is_detection() && correlation_only.contains(key))
                        })
                        .map(|r| Finding::from_result(r, row, max_evidence)),
                );
            },
        );
        self.correlation_only = correlation_only;
        for f in &mut found {
            f.rule_name = self.names.get(&f.rule_id).cloned();
        }
        self.found += found.len() as u64;
        self.findings.extend(found);
    }

    /// Evaluate `batch` row by row: derive history facts (then let `pin` adjust them), run
    /// the engine at the row's event time and hand the results to `sink`.
    pub fn evaluate(
        &mut self,
        batch: &CanonicalBatch,
        mut pin: impl FnMut(usize, &mut Derived),
        mut sink: impl FnMut(&Row<'_>, &[EvaluationResult]),
    ) {
        let view = BatchView::of(batch);
        for i in 0..view.len() {
            let key = self.gate.key(&view, i);
            let maybe = self.gate.may_admit(key);
            let mut derived = self.enricher.observe(&view, i, maybe);
            pin(i, &mut derived);
            let withheld = match &mut self.suppressions {
                Some(s) => s.withhold(&view, i),
                None => suppress::Withheld::default(),
            };
            derived.suppressed = withheld.mask;
            let row = Row {
                view: &view,
                i,
                derived: &derived,
            };
            let secs = row.time_ms().div_euclid(1000);
            if secs >= self.last_evict_s.saturating_add(EVICT_EVERY_S) {
                self.engine.evict_expired(secs);
                self.sequels.evict_expired(secs);
                if let Some(v) = &mut self.vendor {
                    v.evict_expired(secs);
                }
                self.last_evict_s = secs;
            }
            let admit = if maybe && !withheld.all {
                self.gate.admit(key, &derived)
            } else {
                Admit::No
            };
            let run = match admit {
                Admit::No => false,
                Admit::Firm => true,
                Admit::Sequel => {
                    let live = self.sequels.live_for(&row, secs)
                        || same_second_follows(&self.gate, &self.sequels, &row, secs);
                    if !live {
                        self.sequels.skip();
                    }
                    live
                }
            };
            let mut results = if run {
                self.gated_in += 1;
                if self.engine.state_count() >= self.config.max_state_entries {
                    // At the cap rsigma drops the stalest groups itself, uncounted: do it here
                    // first so the evictions are counted.
                    let before = self.engine.state_count();
                    self.engine.evict_expired(secs);
                    self.correlation_evicted += (before - self.engine.state_count()) as u64;
                }
                let results = self.engine.process_event_at(&row, secs);
                self.sequels.observe(&results, secs);
                results
            } else {
                Vec::new()
            };
            if let Some(v) = &mut self.vendor
                && !withheld.all
                && let Some(raw) = row::opt_str(&view.raw, i)
                && let Some(space) = view.source[i]
                    .and_then(|s| vendor::space_of(s, view.vendor_event_type.value(i)))
                && v.covers(space)
            {
                results.extend(v.evaluate(space, raw, secs));
            }
            self.events += 1;
            if !results.is_empty() {
                sink(&row, &results);
            }
        }
    }

    /// What each suppression withheld so far (empty without suppressions).
    pub fn suppressed(&self) -> Vec<suppress::SuppressedCount> {
        self.suppressions
            .as_ref()
            .map_or_else(Vec::new, suppress::Suppressions::counts)
    }

    /// Findings so far, in the order they fired.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Take the findings produced so far.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    /// Current counters.
    pub fn counters(&self) -> DetectCounters {
        DetectCounters {
            events: self.events,
            gated_in: self.gated_in,
            sequels_skipped: self.sequels.skipped(),
            late_events: self.reorder.late(),
            findings: self.found,
            rules: self.rules,
            vendor_rules: self.vendor.as_ref().map_or(0, vendor::VendorEngines::rules),
            raw_unparsed: self
                .vendor
                .as_ref()
                .map_or(0, vendor::VendorEngines::unparsed),
            correlation_state: self.engine.state_count()
                + self.sequels.live_entries()
                + self
                    .vendor
                    .as_ref()
                    .map_or(0, vendor::VendorEngines::state_count),
            correlation_refs: self.engine.event_ref_buffer_count()
                + self
                    .vendor
                    .as_ref()
                    .map_or(0, vendor::VendorEngines::ref_count),
            correlation_evicted: self.correlation_evicted,
            history: self.enricher.counters(),
            repeats_not_stored: 0,
            state_saves: 0,
            state_bytes: 0,
            state_save_ms: 0,
            state_restore_ms: 0,
        }
    }
}
