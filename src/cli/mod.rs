//! Command-line interface: clap definitions and one small function per subcommand that calls
//! the library. Exit codes: 0 ok, 1 runtime failure (or dead letters with `--strict`), 2 usage.

mod dashboard;
mod demo;
pub mod detect;
mod generate;
mod ingest;
pub mod notify;
mod otp;
mod out;
pub use out::is_broken_pipe;
mod probe;
mod report;
pub mod sli;
pub mod slo;
mod sources;
mod store;
mod verifier;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::sink::Location;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::normalize::LogFormat;
use crate::normalize::ticket::TicketConfig;
use crate::normalize::ticket::classify::Classifier;
use crate::normalize::ticket::csv::Columns;

/// Security telemetry and SLO analyzer for two-factor authentication events.
#[derive(Parser, Debug)]
#[command(name = "mfascope", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (e.g. `info`, `mfascope=debug`).
    #[arg(long, global = true, env = "MFASCOPE_LOG", default_value = "warn")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// Stable JSON for machines.
    Json,
}

/// The verbs of `mfascope`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest IdP logs (files, globs, directories, `-` for stdin, gzip) into canonical Parquet.
    Ingest(Box<IngestArgs>),
    /// Write deterministic synthetic 2FA traffic in a vendor format, plus ground-truth labels.
    Generate(GenerateArgs),
    /// Ingest the bundled sample data into a work directory and print the report.
    Demo(DemoArgs),
    /// Compute the SLIs in `queries/*.sql` over ingested data, per time bucket.
    Sli(SliArgs),
    /// Run ad-hoc SQL against the `events` table.
    Query(QueryArgs),
    /// SLO status: SLI over the window, error budget left, burn rates; `slo check` exits 3
    /// when an objective is violated.
    Slo(SloArgs),
    /// Alert timeline of the multi-window multi-burn-rate policies (table, JSON or an
    /// Alertmanager webhook payload).
    Alerts(AlertsArgs),
    /// Run the detection rules (Sigma) over stored events and print the findings.
    Detect(DetectArgs),
    /// Check rule files (`lint`) or run their test cases (`test`).
    Rules(RulesArgs),
    /// Terminal dashboard (executive, on-call, debug views) over ingested data;
    /// `--snapshot` prints one frame as text.
    Dashboard(Box<DashboardArgs>),
    /// Delivery of findings and SLO alerts: outbox status, retry of parked notifications.
    Notify(notify::NotifyArgs),
    /// One-time codes and provisioning URIs (RFC 4226 HOTP, RFC 6238 TOTP).
    Otp(OtpArgs),
    /// The reference 2FA verifier (JSON API; every step a canonical event).
    Verifier(verifier::VerifierArgs),
    /// Synthetic 2FA login checks against a verifier (JUnit, JSON, events); exit 3 when a
    /// check fails or a threshold is missed.
    Probe(probe::ProbeArgs),
    /// Reports people read: 2FA coverage posture (`posture`), and the weekly or monthly
    /// report (`weekly`, `monthly`: self-contained HTML or Markdown).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Vendor log-API sources (`sources check --sources FILE`: one authenticated request
    /// per source, one line each).
    #[command(subcommand)]
    Sources(sources::SourcesCommand),
    /// Make a store written before the table format (no `events/_delta_log/`) a set of Delta
    /// tables, in place; running it again changes nothing.
    Migrate(store::MigrateArgs),
    /// Merge the small files of the store's partitions (one commit each; readers never see
    /// a partition half-merged), then vacuum removed files.
    Compact(store::CompactArgs),
    /// Expire events, tickets, findings and dead letters older than the retention policy
    /// (a legal hold keeps users or time ranges), then vacuum removed files.
    Prune(store::PruneArgs),
}

impl Command {
    /// Whether the command reads the store once and exits (SLIs, ad-hoc SQL, SLO status, alert
    /// history, reports): short-lived and read-heavy, where reusing freed memory beats a low
    /// resident peak (the allocator is told so, see `main.rs`).
    pub fn reads_once(&self) -> bool {
        matches!(
            self,
            Command::Sli(_)
                | Command::Query(_)
                | Command::Slo(_)
                | Command::Alerts(_)
                | Command::Report(_)
        )
    }
}

/// `mfascope dashboard`.
#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    /// Output of `mfascope ingest`: a directory or an object store URL. In live mode
    /// (`--follow`, `--kafka`) the ingest runs in-process into it, as `ingest --out` would.
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Live: follow these files, globs or directories (rotation-safe), ingesting into --data.
    #[arg(long, num_args = 1.., value_name = "PATH", conflicts_with = "kafka")]
    pub follow: Vec<String>,
    /// Live from Kafka (see `ingest --kafka`), ingesting into --data.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Input format of --follow; `auto` detects it per record.
    #[arg(long, value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Live: longest time an event waits before it is committed to Parquet.
    #[arg(long, default_value = "1s", value_parser = crate::time::parse_duration)]
    pub max_latency: Duration,
    /// Pseudonymization of the live ingest.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Diagnostics of the interactive dashboard go to this file (the terminal belongs to the
    /// dashboard) [default: mfascope-dashboard.log in the temporary directory].
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// View to open first (`executive`, `oncall`, `debug`, or one from --dashboards).
    #[arg(long)]
    pub view: Option<String>,
    /// Folder of view files (default: `./dashboards` if present, else the shipped views).
    #[arg(long)]
    pub dashboards: Option<PathBuf>,
    /// SLO specs.
    #[command(flatten)]
    pub slos: SlosArg,
    /// Rules.
    #[command(flatten)]
    pub rules: RulesArg,
    /// Delivery of the live findings and SLO alerts (with --follow or --kafka).
    #[command(flatten)]
    pub delivery: notify::DeliveryArgs,
    /// Redraw at least this often.
    #[arg(long, default_value = "1s", value_parser = crate::time::parse_duration)]
    pub refresh: Duration,
    /// Show the stored data as it was at this table version (an integer) or instant (RFC
    /// 3339): time travel over the Delta log, back to the last vacuum. Not with --follow or
    /// --kafka (live views read the latest commit).
    #[arg(long, value_name = "VERSION|TIME", conflicts_with_all = ["follow", "kafka"])]
    pub as_of: Option<String>,
    /// Print one frame of the stored data as text and exit (CI logs, docs).
    #[arg(long, conflicts_with_all = ["follow", "kafka"])]
    pub snapshot: bool,
    /// Frame size for --snapshot, WIDTHxHEIGHT.
    #[arg(long, default_value = "120x40", value_parser = parse_size)]
    pub size: (u16, u16),
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?}: use WIDTHxHEIGHT, e.g. 120x40"))?;
    let parse = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| (10..=1000).contains(n))
            .ok_or_else(|| format!("{s:?}: width and height are 10..1000 cells"))
    };
    Ok((parse(w)?, parse(h)?))
}

/// Finding report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FindingFormat {
    /// Aligned text.
    Table,
    /// Counters and findings.
    Json,
    /// Alertmanager v2 alerts (`POST /api/v2/alerts` body).
    Alertmanager,
}

/// `mfascope detect`.
#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// Rules.
    #[command(flatten)]
    pub rules: RulesArg,
    /// Also store the findings as Parquet under `OUT/findings/`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: FindingFormat,
}

/// `rules` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesMode {
    /// Report schema problems with file:line (exit 1 on errors).
    Lint,
    /// Run every rule's `rsigma.exemplars` test cases (exit 1 on a failure).
    Test,
    /// Score every rule on its exemplars and its labelled sample log (`--data`): true and
    /// false positives and misses per rule (exit 1 naming each rule that regressed).
    Backtest,
}

/// `mfascope rules`.
#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    /// `lint` or `test`.
    #[arg(value_enum)]
    pub mode: RulesMode,
    /// Rules.
    #[command(flatten)]
    pub rules: RulesArg,
    /// `test`: also fail when a rule lacks a match or a no-match case; `backtest`: also fail
    /// when a rule that produces findings has no sample log.
    #[arg(long)]
    pub strict: bool,
    /// `backtest`: folder of labelled sample logs, `<rule name>.ndjson` (canonical events, each
    /// with `"label": "attack"` or `"benign"`); default `tests/` inside the rules folder.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// `backtest`: also write the result as JUnit XML (one test case per rule) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// `slo` modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SloMode {
    /// Print the status (default).
    Status,
    /// Print the status and exit 3 when any objective is violated (CI gate).
    Check,
}

/// Stored history to evaluate SLOs over (shared by `slo` and `alerts`): SLOs are evaluated at
/// the end of the range.
#[derive(clap::Args, Debug)]
pub struct SloHistoryArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// SLO specs.
    #[command(flatten)]
    pub slos: SlosArg,
    /// Rules (the attack-exclusion rules are taken from them).
    #[command(flatten)]
    pub rules: RulesArg,
}

/// Stored events and a time range (`sli`, `query`, `detect`, `slo`, `alerts`).
#[derive(clap::Args, Debug)]
pub struct DataRange {
    /// Output of `mfascope ingest`: a directory or an object store URL (`s3://bucket/prefix`).
    #[arg(long, value_parser = Location::parse)]
    pub data: Location,
    /// Start of the range (RFC 3339, inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (RFC 3339, exclusive; default: the end of the data). SLOs are
    /// evaluated at this instant.
    #[arg(long)]
    pub to: Option<String>,
    /// Read the tables as they were at this table version (an integer) or instant (RFC
    /// 3339): time travel over the Delta log, back to the last vacuum.
    #[arg(long, value_name = "VERSION|TIME")]
    pub as_of: Option<String>,
}

impl DataRange {
    /// `--as-of` parsed.
    pub fn as_of(&self) -> anyhow::Result<crate::sli::AsOf> {
        parse_as_of(self.as_of.as_deref())
    }
}

/// `--as-of VERSION|TIME`.
pub fn parse_as_of(text: Option<&str>) -> anyhow::Result<crate::sli::AsOf> {
    use crate::sli::AsOf;
    Ok(match text {
        None => AsOf::Latest,
        Some(t) => match t.parse::<u64>() {
            Ok(v) => AsOf::Version(v),
            _ => {
                let ms = crate::time::parse_rfc3339(t).map_err(|e| {
                    anyhow::anyhow!("--as-of {t}: neither a table version nor a time ({e})")
                })?;
                AsOf::Time(
                    chrono::DateTime::from_timestamp_millis(ms)
                        .ok_or_else(|| anyhow::anyhow!("--as-of {t}: out of range"))?,
                )
            }
        },
    })
}

/// `--slos` and the attack exclusion (every command that evaluates SLOs).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SlosArg {
    /// SLO spec file or folder (default: `./slos` if present, else the shipped SLOs).
    #[arg(long = "slos", id = "slos", value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Planned maintenance windows (YAML, docs/slo.md): they silence the alert severities
    /// they name (ticket by default) and, with `excludeFromBudget`, leave the error budget.
    #[arg(long, value_name = "FILE")]
    pub maintenance: Option<PathBuf>,
    /// Attack traffic.
    #[command(flatten)]
    pub attack: AttackArgs,
}

impl SlosArg {
    /// The SLOs these flags name, with their maintenance windows attached.
    pub fn resolve(&self) -> anyhow::Result<Vec<crate::slo::Slo>> {
        let mut slos = crate::slo::resolve_slos(self.path.as_deref())?;
        if let Some(path) = &self.maintenance {
            let windows = crate::slo::maintenance::read(path)?;
            crate::slo::maintenance::attach(&mut slos, &windows, path)?;
        }
        Ok(slos)
    }
}

/// On or off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lower")]
pub enum Switch {
    #[default]
    On,
    Off,
}

/// `--attack-exclusion`, `--attack-rules` (every command that computes SLIs or SLOs).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AttackArgs {
    /// Leave attack traffic (every event of a campaign of --attack-rules) out of the SLIs and
    /// error budgets; it is counted as attack traffic beside them either way.
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub attack_exclusion: Switch,
    /// Correlation rules whose campaigns are attack traffic (Sigma name or id, comma-separated)
    /// [default: mfa_push_bombing, mfa_otp_brute_force, mfa_spray, those the rules have].
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub attack_rules: Option<Vec<String>>,
}

impl AttackArgs {
    /// The policy these flags name.
    pub fn policy(&self) -> crate::attack::AttackPolicy {
        crate::attack::AttackPolicy {
            exclude: self.attack_exclusion == Switch::On,
            rules: self.attack_rules.clone(),
        }
    }
}

/// `--rules` (every command that runs Sigma rules).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RulesArg {
    /// Sigma rule file or folder (default: `./rules` if present, else the built-in rules).
    #[arg(long = "rules", id = "rules", value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Suppressions (allow-lists) applied before the rules evaluate an event: users, IPs or
    /// networks, apps and time windows, for every rule or named ones (TOML; docs/detection.md,
    /// "Suppressions"). Each one's count is in the findings summary and on `/metrics`.
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
}

impl RulesArg {
    /// The rules these flags name, with their suppressions.
    pub fn load(&self) -> anyhow::Result<crate::detect::RuleSet> {
        let rules = crate::detect::RuleSet::resolve(self.path.as_deref())?;
        Ok(match &self.suppressions {
            Some(file) => {
                rules.with_suppressions(crate::detect::suppress::Suppressions::load(file)?)
            }
            None => rules,
        })
    }
}

/// `--pseudonymize-key` (every command that ingests).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PrivacyArgs {
    /// Replace user, actor and client IP by keyed pseudonyms (HMAC-SHA256 under the key in
    /// FILE, at least 32 random bytes): the same in every run with the same key. Raw vendor
    /// records are then not kept (nor dead letters' text), so vendor-field rules cannot match.
    #[arg(long, value_name = "FILE")]
    pub pseudonymize_key: Option<PathBuf>,
}

/// `mfascope slo`.
#[derive(clap::Args, Debug)]
pub struct SloArgs {
    /// `status` (default) or `check`.
    #[arg(value_enum)]
    pub mode: Option<SloMode>,
    /// Data, specs and range.
    #[command(flatten)]
    pub history: SloHistoryArgs,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// `mfascope slo rules`: parsed on its own (see [`parse`]), since `slo` requires `--data`.
#[derive(clap::Parser, Debug)]
#[command(
    name = "mfascope slo rules",
    version,
    about = "Write the SLOs as Prometheus recording and multi-window burn-rate alert rules over \
             the per-SLO counters `ingest --metrics-listen` exports (or promtool unit tests for \
             them)"
)]
pub struct SloRulesArgs {
    /// SLO spec file or folder (default: `./slos` if present, else the shipped SLOs).
    #[arg(long = "slos", value_name = "PATH")]
    pub slos: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum, default_value = "prometheus")]
    pub format: RulesFormat,
    /// The rule file the promtool tests load (as `rule_files` names it).
    #[arg(long, default_value = "mfascope-slo-rules.yml")]
    pub rule_file: String,
}

/// `slo rules` outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// A Prometheus rule file (`promtool check rules` validates it).
    Prometheus,
    /// promtool unit tests of those rules (`promtool test rules`).
    PromtoolTests,
}

/// Alert report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlertFormat {
    /// Aligned text.
    Table,
    /// Episodes and every state transition.
    Json,
    /// Alertmanager webhook payload (version 4).
    Alertmanager,
}

/// `mfascope alerts`.
#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// Data, specs and range.
    #[command(flatten)]
    pub history: SloHistoryArgs,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: AlertFormat,
}

/// `mfascope sli`.
#[derive(clap::Args, Debug)]
pub struct SliArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// Group by these columns (comma-separated): app, factor, source, country, tenant, …
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Bucket width.
    #[arg(long, value_enum, default_value = "1h")]
    pub bucket: crate::sli::Bucket,
    /// Folder of `.sql` files (default: `./queries` if present, else the shipped queries).
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Run only these queries (by name).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Attack traffic.
    #[command(flatten)]
    pub attack: AttackArgs,
    /// Rules (the attack-exclusion rules are taken from them).
    #[command(flatten)]
    pub rules: RulesArg,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// `mfascope query`.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// SQL text.
    #[arg(long, conflicts_with = "file")]
    pub sql: Option<String>,
    /// File holding the SQL.
    pub file: Option<PathBuf>,
    /// Result format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// How support-ticket exports (Zendesk, Jira, ServiceNow JSON; CSV) are read.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TicketArgs {
    /// Which tickets are MFA-related: a TOML file of `tags`, `categories` and subject
    /// `keywords` [default: the shipped rules/mfa-tickets.toml].
    #[arg(long, value_name = "FILE")]
    pub ticket_rules: Option<PathBuf>,
    /// Column names of CSV ticket exports: a TOML file mapping `id`, `created`, `updated`,
    /// `requester`, `subject`, `status`, `category`, `tags` (and `tags_separator`) to header
    /// names [default: common header names are recognised].
    #[arg(long, value_name = "FILE")]
    pub ticket_columns: Option<PathBuf>,
}

impl TicketArgs {
    /// The ticket configuration these flags name.
    pub fn config(&self) -> anyhow::Result<Arc<TicketConfig>> {
        if self.ticket_rules.is_none() && self.ticket_columns.is_none() {
            return Ok(crate::normalize::ticket::default_config());
        }
        let classifier = match &self.ticket_rules {
            Some(p) => Classifier::load(p)?,
            None => Classifier::builtin(),
        };
        let columns = match &self.ticket_columns {
            Some(p) => Columns::load(p).map_err(anyhow::Error::msg)?,
            None => Columns::default(),
        };
        Ok(Arc::new(TicketConfig {
            classifier,
            columns,
        }))
    }
}

/// `mfascope ingest`.
#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Input files, globs or directories; `-` reads standard input; or object-store prefixes
    /// (`s3://bucket/AWSLogs/`, `gs://…`, `az://container/insights-logs-signinlogs/`), listed
    /// recursively, credentials from the standard AWS / Google / Azure environment.
    #[arg(
        required_unless_present_any = ["kafka", "sources"],
        conflicts_with_all = ["kafka", "sources"]
    )]
    pub paths: Vec<String>,
    /// Poll the vendor log APIs of this sources file (`[[source]]` tables: Okta, Duo, Graph,
    /// Google Workspace) instead of reading files; with --follow, every source's `interval`.
    #[arg(long, value_name = "FILE", conflicts_with = "kafka")]
    pub sources: Option<PathBuf>,
    /// Kafka source.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Output (events/, deadletter/, findings/, _state/): a directory, or an object store URL
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`; credentials and endpoint from the usual
    /// `AWS_*` / `GOOGLE_*` / `AZURE_*` environment variables).
    #[arg(long, value_parser = Location::parse)]
    pub out: Location,
    /// Input format; `auto` detects it per record.
    #[arg(long, value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// The date (`YYYY-MM-DD`) of log lines that carry only a time of day, such as Keycloak's
    /// from a console pattern without `%d{yyyy-MM-dd}` (old WildFly-based releases); every
    /// such line takes this date, so give one file (one day) at a time. Without it those lines
    /// are dead letters saying the date is missing.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub assume_date: Option<chrono::NaiveDate>,
    /// Keep tailing files (rotation-safe) and watching directories until interrupted; on
    /// object-store prefixes, list them again every --list-every for new objects.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how often a file that has no new bytes is checked again.
    #[arg(long, default_value = "200ms", value_parser = crate::time::parse_duration)]
    pub poll_every: Duration,
    /// With --follow on object-store prefixes: how often to list them again (from after the
    /// greatest key seen; in full every tenth time).
    #[arg(long, default_value = "30s", value_parser = crate::time::parse_duration)]
    pub list_every: Duration,
    /// On object-store prefixes: read the objects that S3 event notifications on this SQS
    /// queue announce instead of listing (direct, SNS-wrapped or EventBridge notifications); a
    /// message is deleted once its objects are committed. Without --follow, stops when the
    /// queue is empty. Local servers: AWS_ENDPOINT_URL_SQS.
    #[arg(long, value_name = "URL")]
    pub sqs_queue: Option<String>,
    /// Exit 1 when any record becomes a dead letter.
    #[arg(long)]
    pub strict: bool,
    /// Summary format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Parser threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Rows per committed segment (bounds memory and file count).
    #[arg(long, default_value_t = 200_000)]
    pub segment_rows: usize,
    /// Buffered MiB after which a segment is committed (bounds memory).
    #[arg(long, default_value_t = 16)]
    pub segment_mib: usize,
    /// Longest time an event waits before it is committed, in follow mode (e.g. `1s`, `500ms`).
    #[arg(long, default_value = "1s", value_parser = crate::time::parse_duration)]
    pub max_latency: Duration,
    /// How often the rule engine's live state (correlation windows, per-user history, rows
    /// waiting for stragglers, latency pairing) is saved with a commit, so a restart or a crash
    /// resumes from it; it is always saved with a run's last commit. After a crash, the events
    /// committed since the last save are replayed from the store.
    #[arg(long, default_value = "10s", value_parser = crate::time::parse_duration)]
    pub state_every: Duration,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Do not keep the live SLIs and SLO state (the summary's SLO part stays empty); the
    /// table is the same. For backfills whose SLIs are read from the store, and to measure
    /// the aggregator's share of ingest time.
    #[arg(long)]
    pub no_live: bool,
    /// Do not run the streaming rule engine (no findings; `mfascope detect` finds them in the
    /// store later). For backfills, and to measure the rule engine's share of ingest time.
    #[arg(long)]
    pub no_detect: bool,
    /// SLO specs for the live SLO state.
    #[command(flatten)]
    pub slos: SlosArg,
    /// Serve Prometheus metrics (SLIs, budgets, burn rates, pipeline counters) on this address,
    /// e.g. `127.0.0.1:9464` (`:0` picks a free port, printed on stderr).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Rules for streaming detection.
    #[command(flatten)]
    pub rules: RulesArg,
    /// Store each vendor record, redacted, in the `raw` column (for vendor-field Sigma rules
    /// over history). On by default when the rules include vendor rules; costs ingest speed.
    #[arg(long, conflicts_with = "pseudonymize_key")]
    pub keep_raw: bool,
    /// Pseudonymization.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Support-ticket exports.
    #[command(flatten)]
    pub tickets: TicketArgs,
    /// How long (in event time) streaming detection waits for out-of-order events before
    /// evaluating them [default: 5m for files, 500ms with --follow or --kafka, where a quiet input
    /// also releases what waits after that long].
    #[arg(long, value_parser = crate::time::parse_duration)]
    pub detect_allowance: Option<Duration>,
    /// Bound of the streaming rule engine's state: users in the per-user history and
    /// correlation groups, each kept at most this many (the least recently seen are dropped
    /// first, counted in the summary and on /metrics).
    #[arg(long, default_value_t = crate::detect::DEFAULT_RULE_STATE)]
    pub max_rule_state: usize,
    /// Recent records remembered: a record repeating the source, event id and bytes of one of
    /// them becomes a dead letter instead of a second event (0 turns the check off).
    #[arg(long, default_value_t = crate::pipeline::dedupe::DEFAULT_WINDOW)]
    pub dedupe_window: usize,
    /// Compaction, retention and vacuum while ingesting.
    #[command(flatten)]
    pub maintain: store::MaintainArgs,
    /// Delivery of findings and SLO alerts.
    #[command(flatten)]
    pub delivery: notify::DeliveryArgs,
}

/// Kafka as the input (`ingest`, live `dashboard`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KafkaArgs {
    /// Consume from Kafka instead of files: bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    #[arg(long, value_name = "HOST:PORT", requires_all = ["topic", "group"])]
    pub kafka: Option<String>,
    /// Kafka topics (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub topic: Vec<String>,
    /// Kafka consumer group: instances in one group share the partitions (and may share --out).
    #[arg(long)]
    pub group: Option<String>,
    /// librdkafka property passed through, `key=value` (repeatable; SASL/SSL settings).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub property: Vec<(String, String)>,
    /// With --kafka: stop once every partition of the topics is committed to its end (by this
    /// instance, or by others of the group sharing --out) instead of running until interrupted
    /// (backfills, benchmarks).
    #[arg(long, requires = "kafka")]
    pub exit_at_end: bool,
}

impl KafkaArgs {
    /// The consumer options, when `--kafka` is given.
    pub fn options(self) -> Option<crate::pipeline::kafka::KafkaOptions> {
        let brokers = self.kafka?;
        Some(crate::pipeline::kafka::KafkaOptions {
            brokers,
            topics: self.topic,
            group: self.group.unwrap_or_default(),
            properties: self.property,
            exit_at_end: self.exit_at_end,
        })
    }
}

/// `key=value`.
fn parse_property(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// `mfascope generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Vendor format to write.
    #[arg(long, value_enum)]
    pub log_format: LogFormat,
    /// Number of records.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Inject labelled attack scenarios.
    #[arg(long)]
    pub attacks: bool,
    /// Days of traffic.
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Inject an incident, `KIND@START/DURATION[/RATE]` (repeatable): `push-outage` (every push
    /// times out) or `degradation` (RATE of verifications fail, default 0.05).
    #[arg(long)]
    pub incident: Vec<crate::generate::Incident>,
    /// Add one synthetic probe check per minute (source `probe`, canonical format only).
    #[arg(long)]
    pub probes: bool,
    /// First event time (RFC 3339).
    #[arg(long, default_value = "2024-05-01T00:00:00Z")]
    pub start: String,
    /// Also write the support tickets this traffic causes (more after incidents), as this
    /// system's export: `FILE.tickets.json` (`.csv`) and `FILE.tickets.labels.jsonl`.
    #[arg(long, value_enum)]
    pub tickets: Option<crate::generate::TicketSystem>,
    /// Share of users who sign in with a password only (no second factor asked), for the
    /// posture report.
    #[arg(long, default_value_t = 0.0)]
    pub no_mfa_share: f64,
    /// Also write who the users are (factor, privileged, no second factor) to
    /// `FILE.users.jsonl`: the posture report's ground truth.
    #[arg(long)]
    pub user_labels: bool,
    /// Output file (`FILE.labels.jsonl` is written beside it); `.gz` compresses.
    #[arg(long)]
    pub out: PathBuf,
}

/// `mfascope demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Sample data to ingest.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-data"))]
    pub data: PathBuf,
    /// Work directory (recreated on each run).
    #[arg(long, default_value = "target/mfascope-demo")]
    pub work: PathBuf,
    /// Folder of SLI `.sql` files (default: `./queries` if present, else the shipped queries).
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// SLO specs.
    #[command(flatten)]
    pub slos: SlosArg,
    /// Rules.
    #[command(flatten)]
    pub rules: RulesArg,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// `e` and its causes on one line, each cause added only when the message so far does not
/// already say it (errors that quote their source would otherwise repeat it at every level).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod error_text_tests {
    #[test]
    fn causes_quoted_by_their_parent_are_not_repeated() {
        let io = std::io::Error::other("No space left on device (os error 28)");
        let parquet =
            anyhow::Error::new(io).context("External: No space left on device (os error 28)");
        let e = parquet
            .context(
                "writing Parquet /o/p.parquet: External: No space left on device (os error 28)",
            )
            .context("ingest into /o");
        assert_eq!(
            super::error_text(&e),
            "ingest into /o: writing Parquet /o/p.parquet: External: No space left on device (os error 28)"
        );
        let plain = anyhow::anyhow!("root cause").context("what failed");
        assert_eq!(super::error_text(&plain), "what failed: root cause");
    }
}

/// The `--log` filter, with rsigma's warning on every correlation-state eviction silenced unless
/// asked for: the evictions are counted in the summary and on `/metrics` instead, and at the
/// bound they come by the thousand.
fn log_filter(given: &str) -> String {
    // Routine messages of libraries, quiet unless asked for by name: rsigma's correlation
    // engine, and delta-rs checking a commit against concurrent ones (every Kafka partition
    // and file scope commits to the same table; a real conflict is mfascope's error).
    let mut filter = given.to_string();
    for (target, level) in [
        ("rsigma_eval::correlation_engine", "error"),
        ("deltalake_core::kernel::transaction", "error"),
    ] {
        if !given.contains(target.split("::").next().unwrap_or(target)) {
            filter.push_str(&format!(",{target}={level}"));
        }
    }
    filter
}

/// Run the parsed command; returns the process exit code.
/// What the command line asks for: `mfascope slo rules …`, or any other command.
pub enum Invocation {
    /// `mfascope slo rules`.
    SloRules(SloRulesArgs),
    /// Everything else.
    Cli(Box<Cli>),
}

/// Parse the process arguments (exits with clap's message on a usage error). `slo rules`
/// needs no data, while every other `slo` does, so it is parsed on its own.
pub fn parse() -> Invocation {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "slo") && args.get(2).is_some_and(|a| a == "rules") {
        let rest = std::iter::once(std::ffi::OsString::from("mfascope slo rules"))
            .chain(args.into_iter().skip(3));
        return Invocation::SloRules(<SloRulesArgs as clap::Parser>::parse_from(rest));
    }
    Invocation::Cli(Box::new(<Cli as clap::Parser>::parse_from(args)))
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(&cli.log))
        .unwrap_or_else(|_| "warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match &cli.command {
        // The interactive dashboard owns the terminal: diagnostics go to a file.
        Command::Dashboard(a) if !a.snapshot => {
            let path = a
                .log_file
                .clone()
                .unwrap_or_else(dashboard::default_log_file);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            logs.with_ansi(false).with_writer(Mutex::new(file)).init();
        }
        _ => logs.with_writer(std::io::stderr).init(),
    }
    match cli.command {
        Command::Ingest(a) => ingest::run(*a),
        Command::Generate(a) => generate::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Sli(a) => sli::run_sli(a),
        Command::Query(a) => sli::run_query(a),
        Command::Slo(a) => slo::run_slo(a),
        Command::Alerts(a) => slo::run_alerts(a),
        Command::Detect(a) => detect::run_detect(a),
        Command::Rules(a) => detect::run_rules(a),
        Command::Dashboard(a) => dashboard::run(*a),
        Command::Otp(a) => otp::run(a),
        Command::Verifier(a) => verifier::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Report(c) => report::run(c),
        Command::Notify(a) => notify::run(a),
        Command::Sources(c) => sources::run(c),
        Command::Migrate(a) => store::run_migrate(a),
        Command::Compact(a) => store::run_compact(a),
        Command::Prune(a) => store::run_prune(a),
    }
}

/// `mfascope otp`.
#[derive(clap::Args, Debug)]
pub struct OtpArgs {
    /// What to print.
    #[command(subcommand)]
    pub command: OtpCommand,
}

/// The shared secret, base32 (RFC 4648; case, spaces and padding forgiven).
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SecretArgs {
    /// The secret itself (visible to other users of this machine while the command runs;
    /// prefer --secret-file).
    #[arg(long)]
    pub secret: Option<String>,
    /// A file whose first line is the secret.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

/// OTP parameters.
#[derive(clap::Args, Debug)]
pub struct OtpParams {
    /// HMAC hash: sha1, sha256 or sha512.
    #[arg(long, default_value = "sha1")]
    pub algorithm: String,
    /// Code length, 6–8.
    #[arg(long, default_value_t = 6)]
    pub digits: u32,
    /// TOTP time step, seconds.
    #[arg(long, default_value_t = 30)]
    pub period: u64,
}

/// `mfascope otp` subcommands.
#[derive(Subcommand, Debug)]
pub enum OtpCommand {
    /// Print the code: TOTP at --time (default now), or HOTP at --counter (like `oathtool
    /// --totp --now @UNIX` / `oathtool --hotp -c N`).
    Code {
        /// Where the shared secret comes from.
        #[command(flatten)]
        secret: SecretArgs,
        /// Digits, period and hash of the code.
        #[command(flatten)]
        params: OtpParams,
        /// TOTP at this Unix time (seconds) instead of now.
        #[arg(long, conflicts_with = "counter", allow_hyphen_values = true)]
        time: Option<i64>,
        /// HOTP at this counter.
        #[arg(long)]
        counter: Option<u64>,
    },
    /// Print the `otpauth://` provisioning URI (TOTP, or HOTP with --counter).
    Uri {
        /// Where the shared secret comes from.
        #[command(flatten)]
        secret: SecretArgs,
        /// Digits, period and hash of the code.
        #[command(flatten)]
        params: OtpParams,
        /// Issuer shown by authenticator apps.
        #[arg(long, default_value = "mfascope")]
        issuer: String,
        /// Account name (user).
        #[arg(long)]
        account: String,
        /// An HOTP URI starting at this counter.
        #[arg(long)]
        counter: Option<u64>,
    },
}
