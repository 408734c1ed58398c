//! Drawing a view: the tab bar, the view's rows of panels, the status bar, and the help, filter
//! and detail overlays. One function per panel kind; every number comes from a [`Snapshot`] of
//! bounded state, so drawing costs the same however much history is stored.

use chrono::DateTime;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, Gauge, GraphType, Paragraph, Row, Sparkline, Table,
    TableState, Tabs, Wrap,
};

use super::app::App;
use super::data::{self, Series, Unit, Window};
use super::model::FindingLog;
use super::spec::{Kind, Panel};
use super::state::{DashState, EventRow};
use mfascope_core::time::TimeRange;
use mfascope_detect::finding::Finding;
use mfascope_sli::live::{Aggregator, MINUTE_MS};
use mfascope_slo::SloReport;

/// Where the data comes from and how fresh it is (the status bar).
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// `history DIR`, `follow FILE…` or `kafka TOPIC`.
    pub source: String,
    /// Events taken in so far.
    pub events: u64,
    /// Ingest rate (events/s), live modes.
    pub events_per_s: Option<f64>,
    /// Consumer lag (messages), Kafka.
    pub lag: Option<i64>,
    /// Wall clock (epoch ms) in live modes: freshness is shown as the newest event's age.
    pub now: Option<i64>,
    /// Why the in-process ingest stopped, if it failed (live modes).
    pub error: Option<String>,
}

/// The state a frame is drawn from.
pub struct Snapshot<'a> {
    /// Live SLI state.
    pub agg: &'a Aggregator,
    /// SLO evaluation at the latest minute.
    pub report: &'a SloReport,
    /// The newest findings and their counts.
    pub findings: &'a FindingLog,
    /// The dashboard's rings and extras.
    pub dash: &'a DashState,
    /// Status bar content.
    pub status: Status,
    /// Runbooks of the rules that name one (rule id → URL), for the detail pane.
    pub rule_runbooks: &'a std::collections::HashMap<String, String>,
}

/// Colours, or none (`NO_COLOR`): then only bold and reverse video carry emphasis, which reads
/// on dark and light terminals alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// Whether to use colours.
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set (<https://no-color.org>).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
}

/// A column: name, width, and how early it is dropped from a narrow panel (0: never; the
/// highest goes first).
type Column = (&'static str, Constraint, u8);

/// A table panel's content.
#[derive(Clone, Debug, Default)]
pub struct TableData {
    /// Column names.
    pub header: Vec<&'static str>,
    /// Column widths.
    pub widths: Vec<Constraint>,
    /// Drop rank per column (see [`Column`]).
    pub drop: Vec<u8>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
    /// The full record behind each row (the detail pane), field by field.
    pub details: Vec<Vec<(String, String)>>,
}

impl TableData {
    /// An empty table with these columns.
    fn with_columns(columns: &[Column]) -> TableData {
        TableData {
            header: columns.iter().map(|c| c.0).collect(),
            widths: columns.iter().map(|c| c.1).collect(),
            drop: columns.iter().map(|c| c.2).collect(),
            ..TableData::default()
        }
    }

    /// The columns shown in `width` cells: columns are dropped highest rank first (the
    /// rightmost of equal rank) until every remaining one gets its width (8 cells for a
    /// filling column) — a narrow panel shows fewer columns rather than every one squeezed.
    pub fn visible(&self, width: u16) -> Vec<usize> {
        let need = |c: usize| match self.widths.get(c) {
            Some(Constraint::Length(n) | Constraint::Min(n)) => *n,
            _ => 8,
        };
        let mut shown: Vec<usize> = (0..self.header.len()).collect();
        while shown.len() > 1 {
            let total: u16 = shown.iter().map(|&c| need(c) + 1).sum::<u16>() - 1;
            if total <= width {
                break;
            }
            let rank = |c: usize| self.drop.get(c).copied().unwrap_or(0);
            let Some(at) = (0..shown.len())
                .rev()
                .max_by_key(|&i| (rank(shown[i]), i))
                .filter(|&i| rank(shown[i]) > 0)
            else {
                break;
            };
            shown.remove(at);
        }
        shown
    }
}

fn time_text(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A finding's group as its values only (`user=alice@x` → `alice@x`); the detail pane keeps
/// the keys.
fn group_values(group: &str) -> String {
    group
        .split(',')
        .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v))
        .collect::<Vec<_>>()
        .join(",")
}

/// A table cell's time: month, day and time of day (the year is in the detail pane).
fn cell_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn axis_time(ms: i64, range_minutes: i64) -> String {
    let fmt = if range_minutes <= 1440 {
        "%H:%M"
    } else {
        "%m-%d"
    };
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(fmt).to_string())
        .unwrap_or_default()
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "–".into(), ToString::to_string)
}

fn event_table(rows: &mut dyn Iterator<Item = &EventRow>, app: &App) -> TableData {
    let mut t = TableData::with_columns(&[
        ("time", Constraint::Length(14), 0),
        ("source", Constraint::Length(9), 6),
        ("user", Constraint::Fill(2), 1),
        ("action", Constraint::Length(13), 2),
        ("factor", Constraint::Length(11), 3),
        ("outcome", Constraint::Length(9), 2),
        ("reason", Constraint::Fill(1), 5),
        ("country", Constraint::Length(7), 4),
    ]);
    for e in rows.filter(|e| app.filter.matches(e)) {
        t.rows.push(vec![
            cell_time(e.time),
            opt(&e.source),
            e.user.clone(),
            opt(&e.action),
            opt(&e.factor),
            opt(&e.outcome),
            opt(&e.reason),
            opt(&e.country),
        ]);
        t.details.push(vec![
            ("event_id".into(), e.event_id.clone()),
            ("time".into(), time_text(e.time)),
            ("source".into(), opt(&e.source)),
            ("user".into(), e.user.clone()),
            ("app".into(), opt(&e.app)),
            ("action".into(), opt(&e.action)),
            ("factor".into(), opt(&e.factor)),
            ("outcome".into(), opt(&e.outcome)),
            ("reason".into(), opt(&e.reason)),
            ("country".into(), opt(&e.country)),
            ("src_ip".into(), opt(&e.src_ip)),
            ("device_id".into(), opt(&e.device_id)),
        ]);
    }
    t
}

fn findings_table(panel: &Panel, snap: &Snapshot, app: &App) -> TableData {
    let mut t = TableData::with_columns(&[
        ("last seen", Constraint::Length(14), 0),
        ("severity", Constraint::Length(8), 1),
        ("rule", Constraint::Fill(2), 3),
        ("group", Constraint::Fill(2), 4),
        ("events", Constraint::Length(6), 5),
        ("summary", Constraint::Fill(4), 1),
    ]);
    let wanted = |f: &Finding| {
        panel.rules.is_empty()
            || f.rule_name
                .as_ref()
                .is_some_and(|n| panel.rules.iter().any(|r| r == n))
    };
    for f in snap
        .findings
        .kept()
        .iter()
        .rev()
        .filter(|f| wanted(f) && app.filter.matches_user(f.user.as_deref()))
    {
        let rule = f.rule_name.clone().unwrap_or_else(|| f.rule_title.clone());
        t.rows.push(vec![
            cell_time(f.last_time),
            f.severity.clone(),
            rule.clone(),
            group_values(&f.group_key),
            f.count.to_string(),
            f.summary.clone(),
        ]);
        t.details.push(vec![
            ("finding".into(), f.id.clone()),
            ("rule".into(), format!("{rule} ({})", f.rule_title)),
            ("severity".into(), f.severity.clone()),
            ("ATT&CK".into(), f.attack.join(", ")),
            ("group".into(), f.group_key.clone()),
            ("user".into(), opt(&f.user)),
            ("src_ip".into(), opt(&f.src_ip)),
            (
                "runbook".into(),
                opt(&snap.rule_runbooks.get(&f.rule_id).cloned()),
            ),
            ("first seen".into(), time_text(f.first_time)),
            ("last seen".into(), time_text(f.last_time)),
            ("events".into(), f.count.to_string()),
            ("summary".into(), f.summary.clone()),
            ("evidence".into(), f.evidence.join(" ")),
        ]);
    }
    t
}

fn slo_table(snap: &Snapshot) -> TableData {
    let mut t = TableData::with_columns(&[
        ("SLO", Constraint::Fill(3), 0),
        ("SLI", Constraint::Length(8), 2),
        ("target", Constraint::Length(8), 5),
        ("budget left", Constraint::Length(11), 1),
        ("burn 1h", Constraint::Length(8), 3),
        ("burn 6h", Constraint::Length(8), 6),
        ("firing", Constraint::Fill(2), 4),
    ]);
    for s in &snap.report.slos {
        let burn = |w: &str| {
            s.burn_rates
                .iter()
                .find(|b| b.window == w)
                .and_then(|b| b.rate)
                .map_or_else(|| "–".into(), |r| format!("{r:.1}×"))
        };
        t.rows.push(vec![
            s.display_name.clone(),
            data::format(s.sli, Unit::Ratio),
            format!("{:.2}%", s.target * 100.0),
            data::format(s.budget_remaining, Unit::Ratio),
            burn("1h"),
            burn("6h"),
            s.firing.join(", "),
        ]);
        let mut details = vec![
            ("SLO".into(), s.name.clone()),
            ("window".into(), s.window.clone()),
            ("good / total".into(), format!("{} / {}", s.good, s.total)),
            ("violated".into(), s.violated.to_string()),
            ("runbook".into(), opt(&s.runbook_url)),
        ];
        for m in &s.maintenance {
            details.push(("maintenance".into(), m.summary()));
        }
        t.details.push(details);
    }
    t
}

fn alerts_table(snap: &Snapshot) -> TableData {
    let mut t = TableData::with_columns(&[
        ("since", Constraint::Length(14), 1),
        ("severity", Constraint::Length(8), 2),
        ("SLO", Constraint::Fill(2), 0),
        ("alert", Constraint::Fill(2), 3),
        ("peak burn", Constraint::Length(9), 4),
    ]);
    for e in snap
        .report
        .episodes
        .iter()
        .filter(|e| e.resolved_at.is_none())
    {
        t.rows.push(vec![
            DateTime::parse_from_rfc3339(&e.firing_at)
                .map_or_else(|_| e.firing_at.clone(), |t| cell_time(t.timestamp_millis())),
            e.severity.clone(),
            e.slo_display_name.clone(),
            if e.explained_by_attack {
                format!("{} (attack)", e.alert)
            } else {
                e.alert.clone()
            },
            format!("{:.1}×", e.peak),
        ]);
        t.details.push(vec![
            ("SLO".into(), e.slo.clone()),
            ("alert".into(), e.alert.clone()),
            ("rule".into(), e.rule.clone()),
            ("firing since".into(), e.firing_at.clone()),
            (
                "attack".into(),
                e.attack_note().unwrap_or_else(|| "none overlapping".into()),
            ),
            (
                "maintenance".into(),
                e.maintenance
                    .as_ref()
                    .map_or_else(|| "none".into(), mfascope_slo::MaintenanceNote::summary),
            ),
            (
                "runbook".into(),
                opt(&snap
                    .report
                    .slos
                    .iter()
                    .find(|s| s.name == e.slo)
                    .and_then(|s| s.runbook_url.clone())),
            ),
        ]);
    }
    t
}

fn countries_table(snap: &Snapshot) -> TableData {
    let mut t = TableData::with_columns(&[
        ("country", Constraint::Fill(1), 0),
        ("failed", Constraint::Length(6), 0),
        ("share", Constraint::Length(7), 1),
    ]);
    let total: u64 = snap.dash.failures_by_country.values().sum();
    let mut by: Vec<(&String, &u64)> = snap.dash.failures_by_country.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (c, n) in by {
        t.rows.push(vec![
            c.clone(),
            n.to_string(),
            data::format(Some(*n as f64 / total.max(1) as f64), Unit::Ratio),
        ]);
        t.details.push(vec![
            ("country".into(), c.clone()),
            ("failed verifications".into(), n.to_string()),
        ]);
    }
    t
}

fn latency_table(snap: &Snapshot, range: TimeRange) -> TableData {
    let mut t = TableData::with_columns(&[
        ("factor", Constraint::Fill(1), 0),
        ("p50", Constraint::Fill(1), 2),
        ("p95", Constraint::Fill(1), 0),
        ("p99", Constraint::Fill(1), 1),
        ("count", Constraint::Fill(1), 3),
    ]);
    for f in snap.agg.latency_factors(data::whole_hours(range)) {
        if let Some(l) = snap.agg.latency(range, Some(f)) {
            t.rows.push(vec![
                f.to_string(),
                format!("{} ms", data::thousands(l.p50_ms as i64)),
                format!("{} ms", data::thousands(l.p95_ms as i64)),
                format!("{} ms", data::thousands(l.p99_ms as i64)),
                data::format(Some(l.count as f64), Unit::Count),
            ]);
            t.details.push(vec![("factor".into(), f.to_string())]);
        }
    }
    t
}

fn impact_table(snap: &Snapshot, range: TimeRange) -> TableData {
    let mut t = TableData::with_columns(&[
        ("what", Constraint::Fill(2), 0),
        ("value", Constraint::Fill(1), 0),
    ]);
    let violated = snap.report.slos.iter().filter(|s| s.violated).count();
    let totals = snap.agg.totals(range);
    let extra = snap.dash.extra(range);
    let severe = snap.findings.severe;
    for (what, value) in [
        (
            "SLOs missing their objective",
            format!("{violated} of {}", snap.report.slos.len()),
        ),
        ("lockouts", extra.lockouts.to_string()),
        (
            "rate-limited attempts",
            totals
                .get(mfascope_sli::live::Counter::RateLimited)
                .to_string(),
        ),
        ("high/critical findings", severe.to_string()),
        (
            "fraud reports and IdP threat verdicts",
            extra.verdicts.to_string(),
        ),
        (
            "IdP errors (latest kept)",
            snap.dash.idp_errors.len().to_string(),
        ),
    ] {
        t.rows.push(vec![what.into(), value.clone()]);
        t.details.push(vec![(what.into(), value)]);
    }
    t
}

/// The rows of a `table` panel, filtered (sorting is applied by [`sort`]).
pub fn table_data(panel: &Panel, snap: &Snapshot, app: &App, range: TimeRange) -> TableData {
    match panel.bind.as_str() {
        "slo.budgets" => slo_table(snap),
        "alerts.firing" => alerts_table(snap),
        "findings" => findings_table(panel, snap, app),
        "events.recent" => event_table(&mut snap.dash.recent.newest_first(), app),
        "events.idp_errors" => event_table(&mut snap.dash.idp_errors.newest_first(), app),
        "events.enrollment" => event_table(&mut snap.dash.enrollment.newest_first(), app),
        "events.verdicts" => event_table(&mut snap.dash.verdicts.newest_first(), app),
        "top.failures_by_country" => countries_table(snap),
        "series.latency_p95_by_factor" => latency_table(snap, range),
        _ => impact_table(snap, range),
    }
}

/// Sort rows (and their details) by column `col`, numbers numerically.
pub fn sort(t: &mut TableData, col: usize, descending: bool) {
    if t.header.is_empty() || t.rows.is_empty() {
        return;
    }
    let col = col % t.header.len();
    let key = |cell: &str| -> (Option<f64>, String) {
        let num: String = cell
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | ','))
            .filter(|c| *c != ',')
            .collect();
        (num.parse().ok(), cell.to_string())
    };
    let mut idx: Vec<usize> = (0..t.rows.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ka, kb) = (key(&t.rows[a][col]), key(&t.rows[b][col]));
        let o = match (ka.0, kb.0) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => ka.1.cmp(&kb.1),
        };
        if descending { o.reverse() } else { o }
    });
    t.rows = idx.iter().map(|&i| t.rows[i].clone()).collect();
    t.details = idx.iter().map(|&i| t.details[i].clone()).collect();
}

/// Split `total` lines over rows: each gets its minimum, the rest by share.
fn row_heights(total: u16, rows: &[(u16, u16)]) -> Vec<u16> {
    let min: u16 = rows.iter().map(|r| r.1).sum();
    if min >= total {
        // Too small: shrink every row in proportion to its minimum.
        return rows
            .iter()
            .map(|r| (r.1 as u32 * total as u32 / min.max(1) as u32) as u16)
            .collect();
    }
    let spare = total - min;
    let shares: u16 = rows.iter().map(|r| r.0).sum::<u16>().max(1);
    let mut out: Vec<u16> = rows
        .iter()
        .map(|r| r.1 + (spare as u32 * r.0 as u32 / shares as u32) as u16)
        .collect();
    let used: u16 = out.iter().sum();
    if let Some(last) = out.last_mut() {
        *last += total - used;
    }
    out
}

/// Draw one frame.
pub fn draw(frame: &mut Frame, app: &mut App, snap: &Snapshot, theme: Theme) {
    let area = frame.area();
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let titles: Vec<Line> = app
        .views
        .iter()
        .enumerate()
        .map(|(i, v)| Line::from(format!("{} {}", i + 1, v.title)))
        .collect();
    frame.render_widget(
        Tabs::new(titles)
            .select(app.current)
            .highlight_style(theme.title().add_modifier(Modifier::REVERSED)),
        tabs,
    );

    let latest = snap.agg.span().map(|(_, last)| last).unwrap_or(0);
    let (range_minutes, range_text) = app.range();
    let window = data::window(latest, range_minutes);
    let view = app.view().clone();
    let heights = row_heights(
        body.height,
        &view
            .rows
            .iter()
            .map(|r| (r.height, r.min_lines))
            .collect::<Vec<_>>(),
    );
    let row_areas = Layout::vertical(heights.iter().map(|h| Constraint::Length(*h))).split(body);
    // Tables first: the detail pane shows the focused table's selected row.
    let mut tables: Vec<TableData> = Vec::new();
    for row in &view.rows {
        for p in row.panels.iter().filter(|p| p.kind == Kind::Table) {
            let mut t = table_data(p, snap, app, window.range);
            if tables.len() == app.focus
                && let Some((col, descending)) = app.sort
            {
                sort(&mut t, col, descending);
            }
            tables.push(t);
        }
    }
    if let Some(t) = tables.get(app.focus) {
        app.clamp_selection(t.rows.len());
    }
    let mut table_index = 0;
    for (row, area) in view.rows.iter().zip(row_areas.iter()) {
        let cols =
            Layout::horizontal(row.panels.iter().map(|p| Constraint::Fill(p.width))).split(*area);
        for (p, a) in row.panels.iter().zip(cols.iter()) {
            let focused = p.kind == Kind::Table && table_index == app.focus;
            let block = Block::bordered().title(Line::styled(
                format!(" {} ", p.title),
                if focused {
                    theme.title()
                } else {
                    Style::new().add_modifier(Modifier::BOLD)
                },
            ));
            match p.kind {
                Kind::Table => {
                    let t = &tables[table_index];
                    let sorted = if focused { app.sort } else { None };
                    let selected = focused.then_some(app.selected);
                    draw_table(frame, *a, block, t, (selected, sorted), theme);
                    table_index += 1;
                }
                Kind::Stat => draw_stat(frame, *a, block, p, snap, window, theme),
                Kind::Chart => draw_chart(frame, *a, block, p, snap, window, theme),
                Kind::Gauges => draw_gauges(frame, *a, block, snap, theme),
                Kind::Detail => {
                    let rows = tables
                        .get(app.focus)
                        .and_then(|t| t.details.get(app.selected));
                    draw_detail(frame, *a, block, rows.map(Vec::as_slice));
                }
            }
        }
    }

    let (left, right) = status_line(snap, app, latest, range_text, status.width);
    let [l, r] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(right.chars().count() as u16),
    ])
    .areas(status);
    match &snap.status.error {
        Some(e) => frame.render_widget(
            Paragraph::new(Line::styled(format!(" ingest stopped: {e}"), theme.bad())),
            l,
        ),
        None => frame.render_widget(Paragraph::new(left), l),
    }
    frame.render_widget(Paragraph::new(right), r);

    if let Some(text) = &app.typing {
        let line = match &app.filter_error {
            Some(e) => Line::from(vec![
                Span::raw(format!("/{text}  ")),
                Span::styled(e.clone(), theme.bad()),
            ]),
            None => Line::from(format!(
                "/{text}▏  app: factor: user: country:  Enter apply · Esc cancel"
            )),
        };
        frame.render_widget(Clear, status);
        frame.render_widget(Paragraph::new(line), status);
    }
    if app.detail
        && !view
            .rows
            .iter()
            .any(|r| r.panels.iter().any(|p| p.kind == Kind::Detail))
    {
        let rows = tables
            .get(app.focus)
            .and_then(|t| t.details.get(app.selected));
        let popup = centered(area, 70, 60);
        frame.render_widget(Clear, popup);
        draw_detail(
            frame,
            popup,
            Block::bordered().title(" Detail (Esc closes) "),
            rows.map(Vec::as_slice),
        );
    }
    if app.help {
        let popup = centered(area, 64, 70);
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(HELP)
                .block(
                    Block::bordered().title(Line::styled(" Keys (any key closes) ", theme.title())),
                )
                .wrap(Wrap { trim: false }),
            popup,
        );
    }
}

/// The status bar's two halves: source, data freshness, events, rate and lag on the left;
/// filter, range and keys on the right. Parts are dropped, least needed first (the keys
/// hint, then the source), until both fit in `width`.
fn status_line(
    snap: &Snapshot,
    app: &App,
    latest: i64,
    range_text: &str,
    width: u16,
) -> (String, String) {
    let st = &snap.status;
    let mut left: Vec<(String, u8)> = vec![(st.source.clone(), 3)];
    match (st.now, snap.dash.latest) {
        (Some(now), Some(newest)) => {
            left.push((format!("newest event {} ago", age_text(now - newest)), 0));
        }
        (Some(_), None) => left.push(("waiting for events".into(), 0)),
        (None, _) if latest > 0 => left.push((
            format!("data to {} UTC", &time_text(latest + MINUTE_MS)[..16]),
            0,
        )),
        _ => {}
    }
    left.push((
        format!(
            "{} events",
            data::format(Some(st.events as f64), Unit::Count)
        ),
        0,
    ));
    if let Some(r) = st.events_per_s {
        left.push((format!("{} ev/s", data::format(Some(r), Unit::Count)), 0));
    }
    if let Some(l) = st.lag {
        left.push((format!("lag {}", data::thousands(l)), 0));
    }
    let mut right: Vec<(String, u8)> = Vec::new();
    if !app.filter.is_empty() {
        right.push((format!("filter {}", app.filter), 0));
    }
    right.push((format!("range {range_text}"), 0));
    right.push(("? help".into(), 2));
    right.push(("q quit".into(), 4));
    let join = |parts: &[(String, u8)]| {
        let texts: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        format!(" {} ", texts.join(" · "))
    };
    loop {
        let (l, r) = (join(&left), join(&right));
        if l.chars().count() + r.chars().count() <= width as usize {
            return (l, r);
        }
        // Drop the part of highest rank (from either side); stop when none is optional.
        let worst = left
            .iter()
            .chain(right.iter())
            .map(|p| p.1)
            .max()
            .unwrap_or(0);
        if worst == 0 {
            return (l, r);
        }
        if let Some(i) = right.iter().rposition(|p| p.1 == worst) {
            right.remove(i);
        } else if let Some(i) = left.iter().rposition(|p| p.1 == worst) {
            left.remove(i);
        }
    }
}

/// A non-negative age in ms as `850 ms`, `12 s`, `3 min`, `5 h`.
fn age_text(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// The help overlay's text.
pub const HELP: &str = "\
Tab / Shift-Tab, 1-9   next / previous view, view by number
[ ]                    shorter / longer time range
/                      filter: factor:push country:BR app:vpn user:alice
                       (a bare word is a user); Esc clears it
Up Down, j k           select a row in the focused table
Left Right, h l        focus the previous / next table
s S                    sort by the next column / reverse order
Enter Esc              open / close the selected row in detail
?                      this help
q, Ctrl-C              quit";

fn centered(area: Rect, width_pct: u16, height_pct: u16) -> Rect {
    let w = (area.width * width_pct / 100).max(20).min(area.width);
    let h = (area.height * height_pct / 100).max(8).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A table panel: the columns that fit, the sorted column marked ▲/▼, the selection.
fn draw_table(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    t: &TableData,
    (selected, sorted): (Option<usize>, Option<(usize, bool)>),
    theme: Theme,
) {
    if t.rows.is_empty() {
        frame.render_widget(Paragraph::new("nothing in range").block(block), area);
        return;
    }
    let shown = t.visible(block.inner(area).width);
    let sorted = sorted.map(|(c, d)| (c % t.header.len().max(1), d));
    let header = Row::new(shown.iter().map(|&c| {
        let mark = match sorted {
            Some((s, true)) if s == c => "▼",
            Some((s, false)) if s == c => "▲",
            _ => "",
        };
        Cell::from(format!("{}{mark}", t.header[c]))
    }))
    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let rows = t
        .rows
        .iter()
        .map(|r| Row::new(shown.iter().map(|&c| Cell::from(r[c].as_str()))));
    let widths: Vec<Constraint> = shown.iter().map(|&c| t.widths[c]).collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn series_for(p: &Panel, snap: &Snapshot, w: Window) -> (Vec<(String, Series)>, Unit) {
    if p.bind == "series.phishing_resistant_share" {
        return (
            vec![(
                "phishing-resistant".into(),
                data::phishing_resistant_series(snap.dash, w.range, w.bucket),
            )],
            Unit::Ratio,
        );
    }
    if p.bind == "series.mfa_success_rate" && p.kind == Kind::Chart && snap.agg.recognises_attacks()
    {
        let [legit, all] = data::success_with_attacks(snap.agg, w.range, w.bucket);
        let s = vec![
            ("legitimate users".into(), legit),
            ("incl. attack traffic".into(), all),
        ];
        return (s, Unit::Ratio);
    }
    if p.bind == "series.latency_p95_by_factor" {
        let s = data::latency_p95_by_factor(snap.agg, w.range, w.bucket)
            .into_iter()
            .map(|(f, s)| (f.to_string(), s))
            .collect();
        return (s, Unit::Millis);
    }
    match data::counter_series(&p.bind, snap.agg, w.range, w.bucket) {
        Some((s, unit)) => (vec![(p.title.clone(), s)], unit),
        None => (Vec::new(), Unit::Count),
    }
}

fn draw_stat(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    p: &Panel,
    snap: &Snapshot,
    w: Window,
    theme: Theme,
) {
    let (series, unit) = series_for(p, snap, w);
    let headline = if p.bind == "series.phishing_resistant_share" {
        let e = snap.dash.extra(w.range);
        (e.verify_successes > 0).then(|| e.phishing_resistant as f64 / e.verify_successes as f64)
    } else {
        data::counter_total(&p.bind, snap.agg, w.range)
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [top, spark] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(data::format(headline, unit), theme.title()),
            Line::from(format!(
                "{}, {} bars",
                data::minutes_text(w.range.millis() / MINUTE_MS),
                data::minutes_text(w.bucket / MINUTE_MS)
            )),
        ]),
        top,
    );
    let values: Vec<u64> = series
        .first()
        .map(|(_, s)| {
            s.iter()
                .map(|(_, v)| {
                    v.map_or(0, |v| {
                        if unit == Unit::Ratio {
                            (v * 10_000.0) as u64
                        } else {
                            v as u64
                        }
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    frame.render_widget(Sparkline::default().data(values).style(theme.good()), spark);
}

fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    p: &Panel,
    snap: &Snapshot,
    w: Window,
    theme: Theme,
) {
    let (series, unit) = series_for(p, snap, w);
    let (from, to, range_minutes) = (w.range.from.millis(), w.range.to.millis(), w.minutes);
    let points: Vec<(String, Vec<(f64, f64)>)> = series
        .into_iter()
        .map(|(name, s)| {
            let pts = s
                .into_iter()
                .filter_map(|(t, v)| Some((t as f64, v?)))
                .collect();
            (name, pts)
        })
        .collect();
    let values = points.iter().flat_map(|(_, p)| p.iter().map(|x| x.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        frame.render_widget(Paragraph::new("no data in range").block(block), area);
        return;
    }
    let (lo, hi) = match unit {
        Unit::Ratio => (((lo * 100.0).floor() / 100.0).clamp(0.0, 0.99), 1.0),
        _ => (0.0, data::axis_top(hi)),
    };
    let colors = [
        Color::Green,
        Color::Yellow,
        Color::Magenta,
        Color::Cyan,
        Color::Blue,
        Color::Red,
    ];
    let markers = [Marker::Braille, Marker::Dot, Marker::Block, Marker::Bar];
    // A legend names the series of a multi-series chart; one series is the panel's title.
    let legend = points.len() > 1;
    let datasets: Vec<Dataset> = points
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| {
            let d = Dataset::default();
            let d = if legend { d.name(name.clone()) } else { d };
            d.marker(if theme.color {
                Marker::Braille
            } else {
                markers[i % markers.len()]
            })
            .graph_type(GraphType::Line)
            .style(theme.fg(colors[i % colors.len()]))
            .data(pts)
        })
        .collect();
    let mid = from + (to - from) / 2;
    let x = Axis::default()
        .title("UTC")
        .bounds([from as f64, to as f64])
        .labels([
            axis_time(from, range_minutes),
            axis_time(mid, range_minutes),
            axis_time(to, range_minutes),
        ]);
    let y = Axis::default().bounds([lo, hi]).labels([
        data::axis_label(lo, unit),
        data::axis_label((lo + hi) / 2.0, unit),
        data::axis_label(hi, unit),
    ]);
    frame.render_widget(
        Chart::new(datasets)
            .block(block)
            .x_axis(x)
            .y_axis(y)
            .hidden_legend_constraints((Constraint::Ratio(1, 3), Constraint::Ratio(3, 4))),
        area,
    );
}

fn draw_gauges(frame: &mut Frame, area: Rect, block: Block, snap: &Snapshot, theme: Theme) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if snap.report.slos.is_empty() {
        frame.render_widget(Paragraph::new("no SLOs"), inner);
        return;
    }
    let n = (inner.height as usize).min(snap.report.slos.len());
    let lines = Layout::vertical(vec![Constraint::Length(1); n]).split(inner);
    for (s, a) in snap.report.slos.iter().zip(lines.iter()) {
        let budget = s.budget_remaining.unwrap_or(0.0).clamp(0.0, 1.0);
        let burn = s
            .burn_rates
            .iter()
            .find(|b| b.window == "1h")
            .and_then(|b| b.rate)
            .map_or_else(|| "–".into(), |r| format!("{r:.1}×"));
        let style = if s.violated || !s.firing.is_empty() {
            theme.bad()
        } else {
            theme.good()
        };
        // The numbers always show; the name gets what room is left.
        let numbers = format!(
            "{} left · 1h {burn}",
            data::format(s.budget_remaining, Unit::Ratio)
        );
        let room = (a.width as usize).saturating_sub(numbers.chars().count() + 1);
        frame.render_widget(
            Gauge::default()
                .ratio(budget)
                .label(format!("{} {numbers}", clip(&s.display_name, room)))
                .gauge_style(style),
            *a,
        );
    }
}

/// `text` cut to `width` characters, ending in `…` when cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

fn draw_detail(frame: &mut Frame, area: Rect, block: Block, rows: Option<&[(String, String)]>) {
    let lines: Vec<Line> = match rows {
        None => vec![Line::from("select a row (↑↓, ←→ to change table)")],
        Some(rows) => rows
            .iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(
                        format!("{k:>12} "),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(v.clone()),
                ])
            })
            .collect(),
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_minimum_and_share_the_rest() {
        assert_eq!(row_heights(22, &[(3, 7), (3, 6), (4, 6)]), vec![7, 6, 9]);
        assert_eq!(row_heights(40, &[(1, 3), (1, 3)]), vec![20, 20]);
        let small = row_heights(10, &[(3, 7), (3, 6), (4, 6)]);
        assert!(small.iter().sum::<u16>() <= 10, "{small:?}");
    }

    #[test]
    fn sorting_is_numeric_where_cells_are_numbers() {
        let mut t = TableData {
            header: vec!["name", "n"],
            rows: vec![
                vec!["b".into(), "10".into()],
                vec!["a".into(), "9".into()],
                vec!["c".into(), "100".into()],
            ],
            details: vec![
                vec![("k".into(), "b".into())],
                vec![("k".into(), "a".into())],
                vec![("k".into(), "c".into())],
            ],
            ..Default::default()
        };
        sort(&mut t, 1, false);
        let col: Vec<&str> = t.rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(col, ["9", "10", "100"]);
        assert_eq!(t.details[0][0].1, "a", "details follow their rows");
        sort(&mut t, 0, true);
        assert_eq!(t.rows[0][0], "c");
    }
}
