//! `mfascope dashboard`: the views over stored history, replayed once into bounded state (the
//! live aggregator, the dashboard's rings, the rule engine's findings), then drawn in the
//! terminal — or once as text with `--snapshot`.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::DashboardArgs;
use super::detect::detect_history;
use super::sli::runtime;
use crate::detect::{DetectConfig, RuleSet};
use crate::sli::live::Aggregator;
use crate::sli::{Bucket, Engine, Params};
use crate::slo::{evaluate, live_config, resolve_slos};
use crate::tui::app::{App, Key};
use crate::tui::render::{Snapshot, Status, Theme, draw};
use crate::tui::state::DashState;

/// Run the dashboard.
pub fn run(a: DashboardArgs) -> anyhow::Result<i32> {
    let views = crate::tui::spec::load(a.dashboards.as_deref())?;
    let mut app = App::new(views, a.view.as_deref()).map_err(anyhow::Error::msg)?;
    let slos = resolve_slos(a.slos.as_deref())?;
    let rules = RuleSet::resolve(a.rules.as_deref())?;
    let params = Params::new(None, None, Bucket::Hour, vec![])?;
    let mut agg = Aggregator::new(live_config(&slos));
    let mut dash = DashState::default();
    runtime()?.block_on(async {
        let engine = Engine::open(&a.data, &params).await?;
        engine
            .for_each_batch("dashboard", "SELECT * FROM events ORDER BY time", |b| {
                agg.observe(b);
                dash.observe(b);
            })
            .await
    })?;
    let (findings, _) = detect_history(&a.data, None, None, &rules, DetectConfig::default())?;
    let report = evaluate(&slos, &agg, None);
    let snap = Snapshot {
        agg: &agg,
        report: &report,
        findings: &findings,
        dash: &dash,
        status: Status {
            source: format!("history {}", a.data),
            events: dash.events,
            ..Status::default()
        },
    };
    let theme = Theme::from_env();
    if a.snapshot {
        let (w, h) = a.size;
        println!("{}", snapshot_text(&mut app, &snap, theme, w, h)?);
        return Ok(0);
    }
    interactive(&mut app, &snap, theme, a.refresh)?;
    Ok(0)
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

/// Draw, read keys, redraw (on a key, a resize, or every `refresh`) until `q`.
fn interactive(
    app: &mut App,
    snap: &Snapshot,
    theme: Theme,
    refresh: Duration,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        while !app.quit {
            terminal.draw(|f| draw(f, app, snap, theme))?;
            if event::poll(refresh)?
                && let Event::Key(k) = event::read()?
                && k.kind == KeyEventKind::Press
                && let Some(k) = key(k)
            {
                app.handle(k);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
