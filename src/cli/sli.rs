//! `mfascope sli` and `mfascope query`: SQL over the canonical table.

use crate::cli::out::outln;

use anyhow::Context;
use arrow::array::RecordBatch;
use futures::StreamExt;

use super::{OutputFormat, QueryArgs, SliArgs};
use crate::attack::{AttackPolicy, reads_marks};
use crate::detect::RuleSet;
use crate::sli::{Engine, Params, resolve_queries};
use crate::time::parse_rfc3339;

/// Parse `--from`/`--to`.
pub fn range(
    from: &Option<String>,
    to: &Option<String>,
) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    let parse = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                parse_rfc3339(s)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| flag.to_string())
            })
            .transpose()
    };
    Ok((parse("--from", from)?, parse("--to", to)?))
}

pub use crate::query_runtime as runtime;

/// Rows of `batches` as JSON objects.
pub fn rows_json(batches: &[RecordBatch]) -> anyhow::Result<serde_json::Value> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    Ok(if bytes.is_empty() {
        serde_json::Value::Array(vec![])
    } else {
        serde_json::from_slice(&bytes)?
    })
}

/// Run every SLI query and print the results.
pub fn run_sli(a: SliArgs) -> anyhow::Result<i32> {
    let (from, to) = range(&a.range.from, &a.range.to)?;
    let by: Vec<String> =
        a.by.iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    let params = Params::new(from, to, a.bucket, by)?.as_of(a.range.as_of()?);
    let mut queries = resolve_queries(a.queries.as_deref())?;
    if !a.only.is_empty() {
        queries.retain(|q| a.only.contains(&q.name));
        anyhow::ensure!(
            !queries.is_empty(),
            "--only {}: no such query",
            a.only.join(",")
        );
    }
    let rules = a.rules.load()?;
    let attack = (&a.attack.policy(), &rules);
    let report = report_slis(&a.range.data, &params, &queries, a.format, attack)?;
    if a.format == OutputFormat::Json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(0)
}

/// Run `queries` over `data`, attack traffic recognised by `attack` (policy, rules); tables are
/// printed as they come, JSON is returned as `{"bucket", "by", "queries": [{name, title, …,
/// rows}]}`.
pub fn report_slis(
    data: &crate::sink::Location,
    params: &Params,
    queries: &[crate::sli::Query],
    format: OutputFormat,
    attack: (&AttackPolicy, &RuleSet),
) -> anyhow::Result<serde_json::Value> {
    runtime()?.block_on(async {
        let started = std::time::Instant::now();
        let engine = Engine::open(data, params).await?;
        tracing::info!(ms = started.elapsed().as_millis() as u64, "store opened");
        let started = std::time::Instant::now();
        let mut reads: Vec<String> = queries.iter().map(|q| params.render(q)).collect();
        reads.extend(attack.0.reads(attack.1, queries)?);
        let holding = engine.share_scans(&reads, shared_scan_cap()?).await?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            ?holding,
            "events read for the queries to share"
        );
        let engine = &engine;
        // What queries read besides the events (attack marks, SLO alert episodes) is prepared
        // while the queries that need neither run: marking attack traffic is one pass of the
        // rule engine over the gated rows, on one core.
        let (prepared, ready) = tokio::sync::watch::channel(false);
        let prepare = async move {
            let started = std::time::Instant::now();
            attack.0.mark(engine, attack.1, queries).await?;
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "attack traffic marked"
            );
            if engine.has_tickets() && queries.iter().any(reads_episodes) {
                let episodes = episodes_of_history(engine, params.to, attack).await?;
                engine.set_episodes(&episodes)?;
            }
            let _ = prepared.send(true);
            anyhow::Ok(())
        };
        let at_once = if created_relations_clash(queries, params) {
            1
        } else {
            QUERIES_AT_ONCE
        };
        // Queries reading what is prepared go last, so they wait in as few of the slots as can be.
        let mut order: Vec<(usize, &crate::sli::Query, bool)> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| (i, q, reads_marks(q) || reads_episodes(q)))
            .collect();
        order.sort_by_key(|&(i, _, waits)| (waits, i));
        let runs = futures::stream::iter(order.into_iter().map(|(i, q, waits)| {
            let mut ready = ready.clone();
            async move {
                if waits && ready.wait_for(|done| *done).await.is_err() {
                    return (i, std::time::Duration::ZERO, None); // preparing failed: reported below
                }
                let started = std::time::Instant::now();
                let batches = engine.run(&q.name, &params.render(q)).await;
                (i, started.elapsed(), Some(batches))
            }
        }))
        .buffer_unordered(at_once);
        // Results are emitted in the pack's order, each as soon as those before it are.
        let emit = async {
            futures::pin_mut!(runs);
            let mut done: Vec<Option<Vec<RecordBatch>>> = vec![None; queries.len()];
            let (mut next, mut report) = (0, Vec::new());
            while let Some((i, took, batches)) = runs.next().await {
                let Some(batches) = batches else { continue };
                tracing::info!(query = %queries[i].name, ms = took.as_millis() as u64, "query ran");
                done[i] = Some(batches?);
                while let Some(batches) = done.get_mut(next).and_then(Option::take) {
                    let q = &queries[next];
                    match format {
                        OutputFormat::Table => {
                            outln!("{} ({})", q.title, q.name);
                            outln!(
                                "{}\n",
                                arrow::util::pretty::pretty_format_batches(&batches)?
                            );
                        }
                        OutputFormat::Json => {
                            let mut v = serde_json::to_value(q)?;
                            v["rows"] = rows_json(&batches)?;
                            report.push(v);
                        }
                    }
                    next += 1;
                }
            }
            anyhow::Ok(report)
        };
        let (prepared, report) = if at_once == 1 {
            // One at a time: nothing runs beside the preparation either.
            let prepared = prepare.await;
            (prepared, emit.await)
        } else {
            tokio::join!(prepare, emit)
        };
        prepared?;
        let report = report?;
        Ok(serde_json::json!({ "bucket": params.bucket, "by": params.by, "queries": report }))
    })
}

/// The most memory the queries' shared read of the events may hold, in bytes:
/// `MFASCOPE_SHARED_SCAN_MB` (0 turns sharing off), [`SHARED_SCAN_MB`] by default.
fn shared_scan_cap() -> anyhow::Result<usize> {
    let mb = match std::env::var("MFASCOPE_SHARED_SCAN_MB") {
        Ok(v) => v.trim().parse::<usize>().with_context(|| {
            format!(
                "MFASCOPE_SHARED_SCAN_MB={v}: expected a whole number of MiB (0 turns sharing off)"
            )
        })?,
        Err(_) => SHARED_SCAN_MB,
    };
    Ok(mb.saturating_mul(1 << 20))
}

/// The default cap of the queries' shared read of the events, in MiB: a store of a few million
/// events fits; a larger one is scanned per query (where the scans' fixed costs matter less).
pub const SHARED_SCAN_MB: usize = 1024;

/// Whether `q` reads the SLO alert episodes (`slo_episodes`).
fn reads_episodes(q: &crate::sli::Query) -> bool {
    q.template.contains("slo_episodes")
}

/// Queries of the pack run this many at a time, results kept in the pack's order. On a small
/// store one query leaves cores idle between its files (each file opened, its predicate
/// rewritten, its column chunks' decoders set up in turn); two at once fill them.
const QUERIES_AT_ONCE: usize = 2;

/// Whether two of `queries` create a table or view of the same name (how a query materializes
/// an intermediate result): such a pack runs one query at a time, so neither reads the other's.
/// The shipped queries name theirs after themselves.
fn created_relations_clash(queries: &[crate::sli::Query], params: &Params) -> bool {
    let mut seen = std::collections::HashSet::new();
    queries.iter().any(|q| {
        let created: std::collections::HashSet<String> =
            crate::sli::created_relations(&params.render(q))
                .into_iter()
                .collect();
        created.into_iter().any(|name| !seen.insert(name))
    })
}

/// The SLO alert episodes of the engine's data (the default or `./slos` specs), for queries
/// that relate other data to alerts (`slo_episodes`).
async fn episodes_of_history(
    engine: &Engine,
    to: Option<i64>,
    (policy, rules): (&AttackPolicy, &RuleSet),
) -> anyhow::Result<Vec<crate::sli::EpisodeRow>> {
    let slos = crate::slo::resolve_slos(None)?;
    let mut agg = policy.aggregator(&slos, rules)?;
    engine.replay(&mut agg).await?;
    let report = crate::slo::evaluate(&slos, &agg, to);
    Ok(report
        .episodes
        .iter()
        .map(|e| crate::sli::EpisodeRow {
            slo: e.slo.clone(),
            alert: e.alert.clone(),
            severity: e.severity.clone(),
            firing_ms: e.firing_ms,
            resolved_ms: e.resolved_ms,
        })
        .collect())
}

/// Run ad-hoc SQL (or a file) against `events`.
pub fn run_query(a: QueryArgs) -> anyhow::Result<i32> {
    let (from, to) = range(&a.range.from, &a.range.to)?;
    let sql = match (&a.sql, &a.file) {
        (Some(sql), None) => sql.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        _ => anyhow::bail!("give exactly one of --sql 'SELECT …' or a FILE"),
    };
    let params = Params::new(from, to, crate::sli::Bucket::Hour, vec![])?.as_of(a.range.as_of()?);
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Engine::open(&a.range.data, &params).await?;
        let batches = engine.run("ad-hoc", &sql).await?;
        match a.format {
            OutputFormat::Table => {
                outln!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
            }
            OutputFormat::Json => {
                outln!("{}", serde_json::to_string_pretty(&rows_json(&batches)?)?);
            }
        }
        Ok(0)
    })
}
