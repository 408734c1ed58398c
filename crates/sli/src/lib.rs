//! SLIs over the canonical Parquet table with DataFusion: loading `queries/*.sql` (header
//! metadata + `${…}` parameters), registering `events` and `tickets` for a time range (and the
//! `slo_episodes` and `attack_traffic` the caller computed), and running SQL.

pub mod live;
pub mod posture;
mod query;
pub mod slice;
pub mod snapshot;

use std::path::PathBuf;

use mfascope_core::attack::{AttackEvent, AttackFilter};
use mfascope_core::event::CanonicalBatch;
use mfascope_sink::Location;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use snapshot::SnapshotTable;

pub use mfascope_table::AsOf;
pub use query::{Bucket, GROUP_COLUMNS, Params, Query, load_queries, resolve_queries};
pub use snapshot::Holding;

/// SLI failures; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SliError {
    /// No Parquet under the data location.
    #[error("no events under {0}: run `mfascope ingest … --out` into it first")]
    NoData(String),
    /// The data location cannot be listed.
    #[error(transparent)]
    Store(#[from] mfascope_sink::SinkError),
    /// A query file is unreadable or malformed.
    #[error("query file {path}: {reason}")]
    BadQuery {
        /// The file being read.
        path: PathBuf,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
    /// A parameter is invalid.
    #[error("{0}")]
    BadParam(String),
    /// DataFusion rejected or failed a query.
    #[error("query {name}: {source}")]
    Sql {
        /// Query name (or `ad-hoc`).
        name: String,
        /// DataFusion's error.
        source: datafusion::error::DataFusionError,
    },
    /// A query's result is not the canonical events its consumer reads.
    #[error("query {name}: {source}")]
    Batch {
        /// Query name.
        name: String,
        /// Which column is missing or of another type.
        source: mfascope_core::event::BatchError,
    },
}

/// A DataFusion session with the `events` table (restricted to the requested time range).
pub struct Engine {
    ctx: SessionContext,
    /// The events table of the snapshot (`events_all`), which may hold columns for the scans.
    events: Arc<snapshot::SnapshotTable>,
    has_tickets: bool,
    /// Stored rows per event-time hour of the range, from the table's log (`None` when the
    /// log lacks them): how ordered replays are sliced without counting the rows first.
    hours: Option<Vec<(i64, u64)>>,
}

/// One SLO alert episode, as the `slo_episodes` table holds it.
#[derive(Clone, Debug)]
pub struct EpisodeRow {
    /// SLO id.
    pub slo: String,
    /// Condition name.
    pub alert: String,
    /// `page` or `ticket`.
    pub severity: String,
    /// Epoch ms it started firing.
    pub firing_ms: i64,
    /// Epoch ms it resolved (none while firing).
    pub resolved_ms: Option<i64>,
}

fn episodes_batch(rows: &[EpisodeRow]) -> RecordBatch {
    use arrow::array::{StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let ts = |name: &str, nullable| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            nullable,
        )
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("slo", DataType::Utf8, false),
        Field::new("alert", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        ts("firing_at", false),
        ts("resolved_at", true),
    ]));
    let strings = |f: fn(&EpisodeRow) -> &str| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as arrow::array::ArrayRef
    };
    RecordBatch::try_new(
        schema,
        vec![
            strings(|r| &r.slo),
            strings(|r| &r.alert),
            strings(|r| &r.severity),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.firing_ms))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMillisecondArray::from_iter(rows.iter().map(|r| r.resolved_ms))
                    .with_timezone("UTC"),
            ),
        ],
    )
    .expect("columns match the episode schema")
}

/// True when `DATA/table/` is a table of the store (has a Delta log); an error naming
/// `mfascope migrate` when it holds Parquet files an older mfascope wrote without one. Listing
/// an object store blocks on the sink's own runtime, so it runs off this one.
async fn has_table(data: &Location, table: &'static str) -> Result<bool, SliError> {
    let listing = data.clone();
    tokio::task::spawn_blocking(move || {
        if mfascope_sink::table::has_log(&listing, table)? {
            Ok(true)
        } else if listing.has_file_under(table, ".parquet")? {
            Err(mfascope_sink::SinkError::Unmigrated(listing.to_string()))
        } else {
            Ok(false)
        }
    })
    .await
    .map_err(|e| SliError::BadParam(format!("listing {data}: {e}")))?
    .map_err(SliError::from)
}

/// Table `name` of the store at `data` as of `params.as_of`, read as `schema`.
async fn snapshot_table(
    data: &Location,
    name: &str,
    schema: arrow::datatypes::SchemaRef,
    params: &Params,
) -> Result<SnapshotTable, SliError> {
    SnapshotTable::open(data, name, schema, params.as_of)
        .await
        .map_err(|e| SliError::BadParam(format!("reading table {}: {e}", data.describe(name))))?
        .ok_or_else(|| SliError::NoData(data.to_string()))
}

/// `events_marked`: every event with `attack` (an attack rule marked it) and `attack_excluded`
/// (the SLIs leave it out). SLI queries read it instead of `events` where attack traffic matters.
/// The join runs in a subquery so that DataFusion's common-subexpression pass sees plain columns,
/// and the few marks are its left (build) side: the events stream past them.
const EVENTS_MARKED_VIEW: &str = "CREATE OR REPLACE VIEW events_marked AS \
    SELECT * EXCLUDE (a_source, a_event_id, a_excluded), \
      a_event_id IS NOT NULL AS attack, COALESCE(a_excluded, false) AS attack_excluded \
    FROM ( \
      SELECT source AS a_source, event_id AS a_event_id, excluded AS a_excluded FROM attack_traffic \
    ) RIGHT JOIN events ON event_id = a_event_id AND CAST(source AS VARCHAR) = a_source";

/// Rebuild `agg`'s live state from the events stored under `data`: those of its retention
/// before the latest stored event, in time order, as an uninterrupted run would have seen
/// them (a restarted `ingest` resumes its SLO status, budgets and alert episodes this way).
/// Returns the events replayed (0 when nothing is stored). Bounded by the retention (33 days
/// by default), not by the history.
pub async fn resume(data: &Location, agg: &mut live::Aggregator) -> Result<u64, SliError> {
    let Some(latest) = latest_event(data).await? else {
        return Ok(0);
    };
    let from = latest - agg.config().retention_minutes * live::MINUTE_MS;
    let engine = Engine::open(data, &Params::new(Some(from), None, Bucket::Hour, vec![])?).await?;
    engine.replay(agg).await
}

/// Event time (ms) of the latest event stored under `data`; `None` when none is.
pub async fn latest_event(data: &Location) -> Result<Option<i64>, SliError> {
    use arrow::array::Array;
    if !has_table(data, "events").await? {
        return Ok(None);
    }
    let all = Params::new(None, None, Bucket::Hour, vec![])?;
    let engine = Engine::open(data, &all).await?;
    let mut latest = None;
    engine
        .for_each_batch(
            "latest stored event",
            "SELECT max(time) AS t FROM events",
            |b| {
                if let Ok(t) = millis(b.column(0))
                    && !t.is_empty()
                    && !t.is_null(0)
                {
                    latest = Some(t.value(0));
                }
            },
        )
        .await?;
    Ok(latest)
}

/// Stream the events stored under `data` in `[from, to)` that `filter` (SQL over the
/// `events` columns) admits, in `(time, event_id)` order, into `f`; only `cols` are read (the
/// others read as nulls). Returns the events seen (0 when nothing is stored).
pub async fn for_each_stored(
    data: &Location,
    (from, to): (Option<i64>, Option<i64>),
    cols: &[&str],
    filter: Option<&str>,
    f: impl FnMut(&CanonicalBatch),
) -> Result<u64, SliError> {
    if !has_table(data, "events").await? {
        return Ok(0);
    }
    let engine = Engine::open(data, &Params::new(from, to, Bucket::Hour, vec![])?).await?;
    engine
        .for_each_in_order("stored events", cols, filter, f)
        .await
}

/// A timestamp column as milliseconds (DataFusion may hand back other units or a time zone).
fn millis(
    column: &arrow::array::ArrayRef,
) -> Result<arrow::array::TimestampMillisecondArray, arrow::error::ArrowError> {
    use arrow::array::AsArray;
    let ms = arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None);
    Ok(arrow::compute::cast(column, &ms)?
        .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
        .clone())
}

/// SQL admitting the events of `[from, to)` (whole hours), by time and by the hive partition
/// columns, so that only the slice's files are opened.
fn slice_filter(from: i64, to: i64) -> String {
    let part = |ms: i64| {
        let dir = mfascope_sink::segment::partition_dir(ms.div_euclid(3_600_000));
        // "dt=YYYY-MM-DD/hour=HH"
        (dir[3..13].to_string(), dir[19..21].to_string())
    };
    let ((d1, h1), (d2, h2)) = (part(from), part(to));
    format!(
        "time >= TIMESTAMP '{}' AND time < TIMESTAMP '{}' \
         AND (dt > '{d1}' OR (dt = '{d1}' AND hour >= '{h1}')) \
         AND (dt < '{d2}' OR (dt = '{d2}' AND hour < '{h2}'))",
        mfascope_core::time::format_rfc3339(from),
        mfascope_core::time::format_rfc3339(to)
    )
}

/// Events a history replay sorts at once, about (see [`Engine::for_each_in_order`]).
pub const REPLAY_SLICE_EVENTS: u64 = 1_000_000;

/// `SELECT cols FROM events [WHERE filter] ORDER BY time`, with the enum (dictionary) columns
/// read as plain strings ([`Engine::for_each_canonical`] makes them dictionaries again):
/// DataFusion's sort merges dictionary columns in time proportional to rows × sorted runs, and
/// a long history sorts thousands of runs (10M events: 12 s against 0.7 s).
fn ordered_events_sql(cols: &[&str], filter: Option<&str>) -> String {
    let schema = mfascope_core::event::event_schema();
    let select: Vec<String> = cols
        .iter()
        .map(|c| {
            match schema
                .field_with_name(c)
                .map(arrow::datatypes::Field::data_type)
            {
                Ok(arrow::datatypes::DataType::Dictionary(..)) => {
                    format!("CAST(\"{c}\" AS VARCHAR) AS \"{c}\"")
                }
                _ => format!("\"{c}\""),
            }
        })
        .collect();
    let filter = filter.map_or_else(String::new, |w| format!(" WHERE {w}"));
    let order = if cols.contains(&mfascope_core::event::col::EVENT_ID) {
        "time, event_id"
    } else {
        "time"
    };
    format!(
        "SELECT {} FROM events{filter} ORDER BY {order}",
        select.join(", ")
    )
}

/// The tables and views `sql` creates (`CREATE [OR REPLACE] TABLE|VIEW name …`, names as
/// written); empty when it does not parse (running it reports why).
///
/// ```
/// let sql = "CREATE OR REPLACE TABLE m04_rated AS SELECT 1 AS x; SELECT x FROM m04_rated";
/// assert_eq!(mfascope_sli::created_relations(sql), ["m04_rated"]);
/// ```
pub fn created_relations(sql: &str) -> Vec<String> {
    use datafusion::sql::parser::{DFParser, Statement};
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    let Ok(statements) = DFParser::parse_sql(sql) else {
        return Vec::new();
    };
    statements
        .into_iter()
        .filter_map(|statement| match statement {
            Statement::Statement(statement) => match *statement {
                Sql::CreateTable(table) => Some(table.name.to_string()),
                Sql::CreateView(view) => Some(view.name.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl Engine {
    /// Register `DATA/events/` (hive-partitioned Parquet, in a directory or on object
    /// storage) as `events_all` and `events` as the view of it restricted to `[from, to)`.
    pub async fn open(data: &Location, params: &Params) -> Result<Engine, SliError> {
        if !has_table(data, "events").await? {
            return Err(SliError::NoData(data.to_string()));
        }
        // DataFusion's `DATAFUSION_*` variables (e.g. `DATAFUSION_EXECUTION_BATCH_SIZE`) tune it.
        let config = SessionConfig::from_env()
            .map_err(|source| SliError::Sql {
                name: "DATAFUSION_* environment".into(),
                source,
            })?
            .with_target_partitions(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            );
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udf(slice::udf());
        let sql_err = |source| SliError::Sql {
            name: "events".into(),
            source,
        };
        if let Location::Remote(remote) = data {
            ctx.register_object_store(remote.base(), remote.store());
        }
        let table =
            snapshot_table(data, "events", mfascope_core::event::event_schema(), params).await?;
        let hours = table.rows_by_hour().map(|hours| {
            let (from, to) = (
                params.from.unwrap_or(i64::MIN),
                params.to.unwrap_or(i64::MAX),
            );
            hours
                .into_iter()
                .filter(|&(h, _)| h.saturating_add(3_600_000) > from && h < to)
                .collect()
        });
        let events = Arc::new(table);
        ctx.register_table("events_all", events.clone())
            .map_err(sql_err)?;
        let view = format!(
            "CREATE VIEW events AS SELECT * FROM events_all{}",
            params.time_filter()
        );
        ctx.sql(&view).await.map_err(sql_err)?;
        let mut engine = Engine {
            ctx,
            events,
            has_tickets: false,
            hours,
        };
        engine.has_tickets = engine.register_tickets(data, params).await?;
        engine.set_episodes(&[])?;
        engine.set_attack_traffic(&[], false).await?;
        Ok(engine)
    }

    /// Let the queries in `sql` (and any text naming the columns something else reads, such as
    /// the attack marking's) share one read of the events: the canonical columns each text
    /// names outside `--` comments (with `events_marked`'s own when it reads that view) are
    /// read once from every file of the snapshot and held, and each scan reading only held
    /// columns is served from memory rather than from the files. Within `cap` bytes, the texts
    /// whose columns add the fewest bytes are served first; the others' scans read the files,
    /// as without it. Results are the same either way.
    pub async fn share_scans(&self, sql: &[String], cap: usize) -> Result<Holding, SliError> {
        let schema = mfascope_core::event::event_schema();
        // The schema's own names, so the readers borrow them rather than copy each word.
        let names = |text: &str| -> Vec<&str> {
            text.lines()
                .map(|line| line.split_once("--").map_or(line, |(code, _comment)| code))
                .flat_map(|code| code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
                .filter_map(|word| schema.index_of(word).ok())
                .map(|i| schema.field(i).name().as_str())
                .collect()
        };
        let readers: Vec<Vec<&str>> = sql
            .iter()
            .map(|text| {
                let mut columns = names(text);
                if text.contains("events_marked") {
                    columns.extend(names(EVENTS_MARKED_VIEW));
                }
                columns
            })
            .collect();
        let parallel = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        self.events
            .hold(&self.ctx.state(), &readers, cap, parallel)
            .await
            .map_err(|source| SliError::Sql {
                name: "events (shared scan)".into(),
                source,
            })
    }

    /// True when support tickets were ingested into the data (`tickets_all` is not empty).
    pub fn has_tickets(&self) -> bool {
        self.has_tickets
    }

    /// `tickets_all` (every stored version of every ticket; empty when none was ingested) and
    /// `tickets`: the latest version of each ticket (by `updated`) created in the range. True
    /// when there are ticket files.
    async fn register_tickets(&self, data: &Location, params: &Params) -> Result<bool, SliError> {
        let sql_err = |source| SliError::Sql {
            name: "tickets".into(),
            source,
        };
        let schema = mfascope_core::ticket::ticket_schema();
        let table = if has_table(data, "tickets").await? {
            Some(snapshot_table(data, "tickets", schema.clone(), params).await?)
        } else {
            None
        };
        let has_files = table.as_ref().is_some_and(|t| !t.files().is_empty());
        if let Some(table) = table {
            self.ctx
                .register_table("tickets_all", Arc::new(table))
                .map_err(sql_err)?;
        } else {
            let empty =
                datafusion::datasource::MemTable::try_new(schema, vec![vec![]]).map_err(sql_err)?;
            self.ctx
                .register_table("tickets_all", Arc::new(empty))
                .map_err(sql_err)?;
        }
        // A ticket exported again (incremental exports repeat updated tickets) counts once,
        // as its latest version.
        let filter = params.time_filter();
        let view = format!(
            "CREATE VIEW tickets AS SELECT * EXCLUDE (version) FROM ( \
               SELECT *, row_number() OVER (PARTITION BY system, ticket_id \
                 ORDER BY updated DESC NULLS LAST, time DESC) AS version FROM tickets_all) \
             {} version = 1",
            if filter.is_empty() {
                "WHERE".to_string()
            } else {
                format!("{filter} AND")
            }
        );
        self.ctx.sql(&view).await.map_err(sql_err)?;
        Ok(has_files)
    }

    /// Replace the `slo_episodes` table (slo, alert, severity, firing_at, resolved_at) that
    /// queries relating SLO alerts to other data read; empty until set.
    pub fn set_episodes(&self, rows: &[EpisodeRow]) -> Result<(), SliError> {
        let sql_err = |source| SliError::Sql {
            name: "slo_episodes".into(),
            source,
        };
        let batch = episodes_batch(rows);
        let table = datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])
            .map_err(sql_err)?;
        let _ = self.ctx.deregister_table("slo_episodes").map_err(sql_err)?;
        self.ctx
            .register_table("slo_episodes", Arc::new(table))
            .map_err(sql_err)?;
        Ok(())
    }

    /// Recognise the attack traffic of the range with `filter` (events replayed in time order)
    /// and register it as `attack_traffic`; returns the events marked.
    pub async fn mark_attacks(
        &self,
        filter: &mut dyn AttackFilter,
        exclude: bool,
    ) -> Result<usize, SliError> {
        let needed = filter.columns();
        let gate = filter.sql_filter();
        let mut marks = Vec::new();
        self.for_each_in_order("attack traffic", &needed, gate.as_deref(), |b| {
            marks.extend(filter.observe(b));
        })
        .await?;
        self.set_attack_traffic(&marks, exclude).await?;
        Ok(marks.len())
    }

    /// Replace the `attack_traffic` table (source, event_id, rule, group_key, time, excluded)
    /// that SLI queries join to count attack traffic apart (and, where `excluded`, leave it
    /// out); empty until set.
    pub async fn set_attack_traffic(
        &self,
        marks: &[AttackEvent],
        exclude: bool,
    ) -> Result<(), SliError> {
        use arrow::array::{BooleanArray, StringArray, TimestampMillisecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let sql_err = |source| SliError::Sql {
            name: "attack_traffic".into(),
            source,
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("event_id", DataType::Utf8, false),
            Field::new("rule", DataType::Utf8, false),
            Field::new("group_key", DataType::Utf8, false),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("excluded", DataType::Boolean, false),
        ]));
        let strings = |f: fn(&AttackEvent) -> &str| {
            Arc::new(StringArray::from_iter_values(marks.iter().map(f))) as arrow::array::ArrayRef
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                strings(|m| m.source.as_str()),
                strings(|m| &m.event_id),
                strings(|m| &m.rule),
                strings(|m| &m.group),
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(marks.iter().map(|m| m.time_ms))
                        .with_timezone("UTC"),
                ),
                Arc::new(BooleanArray::from(vec![exclude; marks.len()])),
            ],
        )
        .expect("columns match the attack traffic schema");
        let table = datafusion::datasource::MemTable::try_new(schema, vec![vec![batch]])
            .map_err(sql_err)?;
        let _ = self
            .ctx
            .deregister_table("attack_traffic")
            .map_err(sql_err)?;
        self.ctx
            .register_table("attack_traffic", Arc::new(table))
            .map_err(sql_err)?;
        self.ctx
            .sql(EVENTS_MARKED_VIEW)
            .await
            .map_err(sql_err)?
            .collect()
            .await
            .map_err(sql_err)?;
        Ok(())
    }

    /// Feed every event of the range to `agg`, in time order (the history path of the live
    /// aggregator: SLO evaluation over history uses exactly the live code). Returns the rows
    /// replayed.
    pub async fn replay(&self, agg: &mut live::Aggregator) -> Result<u64, SliError> {
        let needed = agg.columns();
        let rows = self
            .for_each_in_order("replay", &needed, None, |b| agg.observe(b))
            .await?;
        self.replay_tickets(|b| agg.observe_tickets(b)).await?;
        Ok(rows)
    }

    /// Feed the latest version of each ticket in the range (what live ingest ends with too) to
    /// `f`, in creation order; nothing when no tickets were ingested.
    pub async fn replay_tickets(&self, f: impl FnMut(&RecordBatch)) -> Result<u64, SliError> {
        if !self.has_tickets {
            return Ok(0);
        }
        let sql = "SELECT ticket_id, system, time, updated, mfa_related FROM tickets ORDER BY time";
        self.for_each_batch("replay tickets", sql, f).await
    }

    /// Stream the events of the range that `filter` (SQL) admits, reading `cols`, in
    /// `(time[, event_id])` order into `f`: in slices of whole event-time hours holding about
    /// [`REPLAY_SLICE_EVENTS`] events, each sorted on its own, so memory stays bounded by a
    /// slice (or one busier hour), not by the history. Returns the events seen.
    pub async fn for_each_in_order(
        &self,
        name: &str,
        cols: &[&str],
        filter: Option<&str>,
        mut f: impl FnMut(&CanonicalBatch),
    ) -> Result<u64, SliError> {
        let mut rows = 0;
        for (from, to) in self.hour_slices(name, filter).await? {
            let slice = slice_filter(from, to);
            let filter = filter.map_or_else(|| slice.clone(), |w| format!("({w}) AND {slice}"));
            let sql = ordered_events_sql(cols, Some(&filter));
            rows += self.for_each_canonical(name, &sql, cols, &mut f).await?;
        }
        Ok(rows)
    }

    /// Consecutive event-time slices `[from, to)` of whole hours covering the events `filter`
    /// admits, each holding about [`REPLAY_SLICE_EVENTS`] (an hour holding more is a slice).
    /// The hours' sizes are the stored rows the log records (a bound of what `filter` admits:
    /// every file is still read by one slice only), counted with a query when it has none.
    async fn hour_slices(
        &self,
        name: &str,
        filter: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, SliError> {
        let hours = match &self.hours {
            Some(hours) => hours.clone(),
            None => self.count_hours(name, filter).await?,
        };
        let mut slices: Vec<(i64, i64)> = Vec::new();
        let mut in_slice = 0u64;
        for (hour, n) in hours {
            let end = hour + 3_600_000;
            match slices.last_mut() {
                Some(last) if in_slice + n <= REPLAY_SLICE_EVENTS || in_slice == 0 => {
                    last.1 = end;
                    in_slice += n;
                }
                _ => {
                    slices.push((hour, end));
                    in_slice = n;
                }
            }
        }
        Ok(slices)
    }

    /// Events per event-time hour (epoch ms of its start) that `filter` admits, counted.
    async fn count_hours(
        &self,
        name: &str,
        filter: Option<&str>,
    ) -> Result<Vec<(i64, u64)>, SliError> {
        use arrow::array::AsArray;
        let filter = filter.map_or_else(String::new, |w| format!(" WHERE {w}"));
        let sql = format!(
            "SELECT date_bin(INTERVAL '1 hour', time, TIMESTAMP '1970-01-01T00:00:00Z') AS h, \
             count(*) AS n FROM events{filter} GROUP BY 1 ORDER BY 1"
        );
        let mut hours: Vec<(i64, u64)> = Vec::new();
        let mut failed = None;
        self.for_each_batch(&format!("{name} (hours)"), &sql, |b| {
            let counts = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::UInt64);
            match (millis(b.column(0)), counts) {
                (Ok(h), Ok(n)) => {
                    let n = n.as_primitive::<arrow::datatypes::UInt64Type>();
                    hours.extend(h.values().iter().copied().zip(n.values().iter().copied()));
                }
                (Err(e), _) | (_, Err(e)) => failed = Some(e),
            }
        })
        .await?;
        if let Some(e) = failed {
            return Err(SliError::Batch {
                name: name.to_string(),
                source: mfascope_core::event::BatchError::Convert(e.to_string()),
            });
        }
        Ok(hours)
    }

    /// [`Engine::for_each_batch`] over canonical events: each batch is checked to carry
    /// `needed` (the columns `f` reads) in a canonical layout before `f` sees it; the columns
    /// the query left out read as nulls.
    pub async fn for_each_canonical(
        &self,
        name: &str,
        sql: &str,
        needed: &[&str],
        mut f: impl FnMut(&CanonicalBatch),
    ) -> Result<u64, SliError> {
        let mut failed = None;
        let rows = self
            .for_each_batch(name, sql, |b| {
                if failed.is_some() {
                    return;
                }
                let batch = match mfascope_core::event::enums_in_vocabulary(b) {
                    Ok(batch) => batch,
                    Err(e) => {
                        failed = Some(mfascope_core::event::BatchError::Convert(e.to_string()));
                        return;
                    }
                };
                match CanonicalBatch::padded(batch, needed) {
                    Ok(batch) => f(&batch),
                    Err(e) => failed = Some(e),
                }
            })
            .await?;
        match failed {
            Some(source) => Err(SliError::Batch {
                name: name.to_string(),
                source,
            }),
            None => Ok(rows),
        }
    }

    /// Stream the result of `sql` batch by batch into `f` (memory stays bounded by DataFusion's
    /// batch size and, for sorted queries, its sort spill). Returns the rows seen.
    pub async fn for_each_batch(
        &self,
        name: &str,
        sql: &str,
        mut f: impl FnMut(&RecordBatch),
    ) -> Result<u64, SliError> {
        use futures::StreamExt;
        let err = |source| SliError::Sql {
            name: name.to_string(),
            source,
        };
        let mut stream = self
            .ctx
            .sql(sql)
            .await
            .map_err(err)?
            .execute_stream()
            .await
            .map_err(err)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(err)?;
            rows += batch.num_rows() as u64;
            f(&batch);
        }
        Ok(rows)
    }

    /// Run SQL and collect the result of its last statement. Earlier statements may create
    /// in-memory tables (`CREATE OR REPLACE TABLE name AS …`) that later ones read: DataFusion
    /// recomputes a CTE at every reference, so a query that reuses an expensive intermediate
    /// result materializes it this way.
    pub async fn run(&self, name: &str, sql: &str) -> Result<Vec<RecordBatch>, SliError> {
        let err = |source| SliError::Sql {
            name: name.to_string(),
            source,
        };
        let statements = datafusion::sql::parser::DFParser::parse_sql(sql).map_err(err)?;
        let mut last = Vec::new();
        for statement in statements {
            let plan = self
                .ctx
                .state()
                .statement_to_plan(statement)
                .await
                .map_err(err)?;
            let df = self.ctx.execute_logical_plan(plan).await.map_err(err)?;
            last = df.collect().await.map_err(err)?;
        }
        Ok(last)
    }
}
