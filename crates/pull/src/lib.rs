//! Vendor log-API sources: the Okta System Log, Duo Admin API v2 authentication logs,
//! Microsoft Graph sign-ins and directory audits, and Google Workspace Reports, configured in
//! a sources file ([`load`]) and polled as one [`ApiSource`] that drives the ingest engine
//! through the source contract. Each source is a scope of its own (`_state/api/NAME`), each of
//! its streams an input whose position is the stream's cursor ([`mfascope_source::Cursor`]:
//! record time and id hash), committed in the same transaction as the rows it produced, so a
//! kill -9 neither loses nor repeats a record. A failing source is reported (its stats, the
//! summary, `/metrics`) and never stops the others.
//!
//! The records go to the normalizers unchanged (each vendor's API returns the records its
//! normalizer maps). This crate never parses records beyond their time and id, and never
//! writes outputs.

mod api;
mod check;
mod config;
mod duo;
mod google;
mod graph;
mod http;
mod okta;
mod pace;
mod poll;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use mfascope_source::{
    Chunk, ChunkKind, Cursor, Feed, Fingerprint, NamedInput, ReadItem, RecordSource, Scope,
    SourceFailure,
};

pub use check::{CheckLine, check};
pub use config::{ConfigError, Credentials, Kind, SourceConfig, load};
pub use http::PollError;
pub use stats::{SourceReport, Stats};

use crate::api::Api;
use crate::http::Http;
use crate::poll::{Poller, Pulled, Stream, Timing};

/// The state prefix of source `name`.
pub fn state_prefix(name: &str) -> String {
    format!("{}/api/{name}", mfascope_source::FILE_STATE)
}

/// A stream's input fingerprint (its key in the scope's checkpoint).
fn fingerprint(source: &str, stream: &str) -> Fingerprint {
    Fingerprint(xxhash_rust::xxh3::xxh3_64(
        format!("api:{source}/{stream}").as_bytes(),
    ))
}

/// The vendor client of a source.
fn api(c: &SourceConfig) -> Result<Box<dyn Api>, PollError> {
    Ok(match c.kind {
        Kind::Okta => Box::new(okta::Okta::new(c)),
        Kind::Duo => Box::new(duo::Duo::new(c)?),
        Kind::Graph => Box::new(graph::Graph::new(c)?),
        Kind::Gworkspace => Box::new(google::Google::new(c)?),
    })
}

/// The sources of a sources file as one [`RecordSource`].
pub struct ApiSource {
    sources: Vec<SourceConfig>,
    follow: bool,
    pace_dir: std::path::PathBuf,
    stats: Vec<Arc<Stats>>,
}

impl ApiSource {
    /// Poll `sources` until each has read up to now (or, with `follow`, until stopped); each
    /// source's request pace is kept in `pace_dir/NAME.json` so a restart keeps to the
    /// vendor's rate limits.
    pub fn new(
        sources: Vec<SourceConfig>,
        follow: bool,
        pace_dir: std::path::PathBuf,
    ) -> ApiSource {
        let stats = sources.iter().map(|_| Arc::new(Stats::default())).collect();
        ApiSource {
            sources,
            follow,
            pace_dir,
            stats,
        }
    }

    /// Each source's name, kind and running counters (for `/metrics`).
    pub fn stats(&self) -> Vec<(String, &'static str, Arc<Stats>)> {
        self.sources
            .iter()
            .zip(&self.stats)
            .map(|(c, s)| (c.name.clone(), c.kind.name(), s.clone()))
            .collect()
    }

    /// What each source did (complete once [`RecordSource::run`] has returned).
    pub fn reports(&self) -> Vec<SourceReport> {
        self.sources
            .iter()
            .zip(&self.stats)
            .map(|(c, s)| s.report(&c.name, c.kind.name()))
            .collect()
    }
}

impl RecordSource for ApiSource {
    fn run(
        &mut self,
        stop: &Arc<AtomicBool>,
        mut feed: Box<dyn Feed>,
    ) -> Result<(), SourceFailure> {
        let halt = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded::<Pulled>(8);
        let mut paths = Vec::new();
        let mut pollers = Vec::new();
        for (i, c) in self.sources.iter().enumerate() {
            let inputs: Vec<NamedInput> = c
                .streams
                .iter()
                .enumerate()
                .map(|(n, s)| NamedInput {
                    input: n as u32,
                    fingerprint: fingerprint(&c.name, s).to_string(),
                    path: format!("{}:{}/{s}", c.kind.name(), c.name),
                })
                .collect();
            paths.push(
                inputs
                    .iter()
                    .map(|i| Arc::<str>::from(i.path.as_str()))
                    .collect::<Vec<_>>(),
            );
            let scope = Scope {
                id: i as u32,
                state: state_prefix(&c.name),
                wait: Duration::ZERO,
                inputs: inputs.clone(),
            };
            let Some(positions) = feed.open(&scope) else {
                return Ok(());
            };
            let streams = c
                .streams
                .iter()
                .zip(&inputs)
                .map(|(name, input)| {
                    let committed = positions
                        .get(&input.fingerprint)
                        .map(|&(time_ms, key)| Cursor { time_ms, key });
                    Stream::new(name.clone(), committed, c.window.as_millis() as i64)
                })
                .collect();
            let poller = api(c).and_then(|api| {
                Ok(Poller {
                    index: i,
                    api,
                    http: Http::new(
                        self.stats[i].clone(),
                        halt.clone(),
                        c.request_every,
                        Some(self.pace_dir.join(format!("{}.json", c.name))),
                    )?,
                    streams,
                    timing: Timing {
                        since_ms: c.since_ms,
                        interval: c.interval,
                        delay: c.delay,
                        overlap: c.overlap,
                        window: c.window,
                    },
                    follow: self.follow,
                    tx: tx.clone(),
                    stop: halt.clone(),
                })
            });
            match poller {
                Ok(p) => pollers.push(p),
                Err(e) => {
                    // A source that cannot start is reported; the others run.
                    self.stats[i].failed(format!("source {:?}: {e}", c.name));
                    feed.close(i as u32);
                }
            }
        }
        drop(tx);
        let mut open: Vec<u32> = pollers.iter().map(|p| p.index as u32).collect();
        let handles: Vec<_> = pollers
            .into_iter()
            .map(|p| {
                std::thread::Builder::new()
                    .name(format!("poll-{}", p.index))
                    .spawn(move || p.run())
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("starting a poller thread: {e}"))?;
        // Leaves when every source is done or the engine has gone (a send or close refused).
        'forward: while !open.is_empty() {
            if stop.load(Ordering::Relaxed) {
                halt.store(true, Ordering::Relaxed);
            }
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(Pulled::Chunk {
                    source,
                    stream,
                    data,
                    spans,
                }) => {
                    let chunk = Chunk {
                        input: stream as u32,
                        path: paths[source][stream].clone(),
                        start: 0,
                        first_line: 0,
                        lines: 0,
                        data,
                        kind: ChunkKind::Polled(spans),
                    };
                    if !feed.send(source as u32, ReadItem::Chunk(chunk)) {
                        break 'forward;
                    }
                }
                Ok(Pulled::Done { source }) => {
                    open.retain(|&s| s != source as u32);
                    if !feed.close(source as u32) {
                        break 'forward;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Quiet sources: segments waiting on latency are committed.
                    for &s in &open {
                        if !feed.send(s, ReadItem::Idle) {
                            break 'forward;
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        halt.store(true, Ordering::Relaxed);
        drop(rx);
        for h in handles {
            let _ = h.join();
        }
        Ok(())
    }
}
