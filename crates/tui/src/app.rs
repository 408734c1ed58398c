//! The dashboard's interaction state and key bindings, free of any terminal: which view is
//! shown, the time range, the filter (and the filter being typed), focus, selection, sorting,
//! the help and detail overlays. Rendering reads this; the event loop feeds it keys.

pub use super::filter::Filter;
use super::spec::View;

/// Time ranges the `[` and `]` keys step through (minutes).
pub const RANGES: &[(i64, &str)] = &[
    (15, "15m"),
    (60, "1h"),
    (360, "6h"),
    (1440, "24h"),
    (7 * 1440, "7d"),
    (30 * 1440, "30d"),
];

/// A key, as the dashboard understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// The Tab key (next panel).
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// The Enter key.
    Enter,
    /// The Escape key.
    Esc,
    /// The Backspace key.
    Backspace,
    /// Ctrl-C.
    Interrupt,
}

/// The interaction state.
#[derive(Clone, Debug)]
pub struct App {
    /// Views, in tab order.
    pub views: Vec<View>,
    /// Index of the view shown.
    pub current: usize,
    /// Index into [`RANGES`] per view.
    pub range: Vec<usize>,
    /// The help overlay is open.
    pub help: bool,
    /// The applied filter.
    pub filter: Filter,
    /// The filter being typed after `/`.
    pub typing: Option<String>,
    /// Why the last typed filter was rejected.
    pub filter_error: Option<String>,
    /// Focused table panel (index among the view's table panels).
    pub focus: usize,
    /// Selected row in the focused table.
    pub selected: usize,
    /// Sort column of the focused table and whether descending; `None` keeps the table's own
    /// order (newest first, worst first).
    pub sort: Option<(usize, bool)>,
    /// The detail overlay (of the selected row) is open.
    pub detail: bool,
    /// Quit requested.
    pub quit: bool,
}

impl App {
    /// Start on `view` (by name; the first view when `None`).
    pub fn new(views: Vec<View>, view: Option<&str>) -> Result<App, String> {
        let current = match view {
            None => 0,
            Some(name) => views.iter().position(|v| v.name == name).ok_or_else(|| {
                let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
                format!("no view {name:?} (views: {})", names.join(", "))
            })?,
        };
        let range = views.iter().map(|v| default_range(&v.range)).collect();
        Ok(App {
            views,
            current,
            range,
            help: false,
            filter: Filter::default(),
            typing: None,
            filter_error: None,
            focus: 0,
            selected: 0,
            sort: None,
            detail: false,
            quit: false,
        })
    }

    /// The view shown.
    pub fn view(&self) -> &View {
        &self.views[self.current]
    }

    /// The time range of the view shown, in minutes and as text.
    pub fn range(&self) -> (i64, &'static str) {
        RANGES[self.range[self.current]]
    }

    /// Number of table panels of the view shown (focus cycles through them).
    pub fn tables(&self) -> usize {
        self.view()
            .rows
            .iter()
            .flat_map(|r| &r.panels)
            .filter(|p| p.kind == super::spec::Kind::Table)
            .count()
    }

    fn switch(&mut self, to: usize) {
        if to != self.current {
            self.current = to;
            self.focus = 0;
            self.selected = 0;
            self.sort = None;
            self.detail = false;
        }
    }

    /// Apply one key.
    pub fn handle(&mut self, key: Key) {
        if key == Key::Interrupt {
            self.quit = true;
            return;
        }
        if let Some(text) = &mut self.typing {
            match key {
                Key::Char(c) => text.push(c),
                Key::Backspace => {
                    text.pop();
                }
                Key::Esc => {
                    self.typing = None;
                    self.filter_error = None;
                }
                Key::Enter => match Filter::parse(text) {
                    Ok(f) => {
                        self.filter = f;
                        self.typing = None;
                        self.filter_error = None;
                        self.selected = 0;
                    }
                    Err(e) => self.filter_error = Some(e),
                },
                _ => {}
            }
            return;
        }
        if self.help {
            // Any key closes the help; `q` still quits.
            self.help = false;
            if key != Key::Char('q') {
                return;
            }
        }
        let views = self.views.len();
        match key {
            Key::Char('q') => self.quit = true,
            Key::Esc if self.detail => self.detail = false,
            Key::Esc if !self.filter.is_empty() => self.filter = Filter::default(),
            Key::Esc => {}
            Key::Char('?') => self.help = true,
            Key::Char('/') => self.typing = Some(self.filter.to_string()),
            Key::Tab => self.switch((self.current + 1) % views),
            Key::BackTab => self.switch((self.current + views - 1) % views),
            Key::Char(c @ '1'..='9') => {
                let i = c as usize - '1' as usize;
                if i < views {
                    self.switch(i);
                }
            }
            Key::Char('[') => {
                let r = &mut self.range[self.current];
                *r = r.saturating_sub(1);
            }
            Key::Char(']') => {
                let r = &mut self.range[self.current];
                *r = (*r + 1).min(RANGES.len() - 1);
            }
            Key::Down | Key::Char('j') => self.selected = self.selected.saturating_add(1),
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Right | Key::Char('l') => {
                let n = self.tables().max(1);
                self.focus = (self.focus + 1) % n;
                self.selected = 0;
                self.sort = None;
            }
            Key::Left | Key::Char('h') => {
                let n = self.tables().max(1);
                self.focus = (self.focus + n - 1) % n;
                self.selected = 0;
                self.sort = None;
            }
            Key::Char('s') => self.sort = Some(self.sort.map_or((0, false), |(c, d)| (c + 1, d))),
            Key::Char('S') => self.sort = Some(self.sort.map_or((0, true), |(c, d)| (c, !d))),
            Key::Enter => self.detail = true,
            _ => {}
        }
    }

    /// Keep the selection inside a table of `rows` rows (after data changed).
    pub fn clamp_selection(&mut self, rows: usize) {
        self.selected = self.selected.min(rows.saturating_sub(1));
    }
}

/// Index into [`RANGES`] of a view's default range (the closest preset).
fn default_range(text: &str) -> usize {
    let minutes = mfascope_core::time::parse_duration(text)
        .map(|d| d.as_secs() as i64 / 60)
        .unwrap_or(60);
    RANGES
        .iter()
        .enumerate()
        .min_by_key(|(_, (m, _))| (m - minutes).abs())
        .map_or(1, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;
    use mfascope_core::event::Factor;

    fn app() -> App {
        App::new(spec::load(None).unwrap(), None).unwrap()
    }

    fn keys(app: &mut App, text: &str) {
        for c in text.chars() {
            app.handle(Key::Char(c));
        }
    }

    #[test]
    fn views_switch_with_tab_numbers_and_names() {
        let mut a = app();
        assert_eq!(a.view().name, "executive");
        a.handle(Key::Tab);
        assert_eq!(a.view().name, "oncall");
        a.handle(Key::BackTab);
        a.handle(Key::BackTab);
        assert_eq!(a.view().name, "debug");
        a.handle(Key::Char('2'));
        assert_eq!(a.view().name, "oncall");
        a.handle(Key::Char('9'));
        assert_eq!(a.view().name, "oncall", "no ninth view: unchanged");
        assert!(App::new(spec::load(None).unwrap(), Some("nope")).is_err());
        let b = App::new(spec::load(None).unwrap(), Some("debug")).unwrap();
        assert_eq!(b.view().name, "debug");
    }

    #[test]
    fn help_opens_on_question_mark_and_any_key_closes_it() {
        let mut a = app();
        a.handle(Key::Char('?'));
        assert!(a.help);
        a.handle(Key::Tab);
        assert!(!a.help);
        assert_eq!(
            a.view().name,
            "executive",
            "the closing key does nothing else"
        );
        a.handle(Key::Char('?'));
        a.handle(Key::Char('q'));
        assert!(a.quit, "q quits even from the help");
    }

    #[test]
    fn filter_is_typed_applied_rejected_and_cleared() {
        let mut a = app();
        a.handle(Key::Char('/'));
        keys(&mut a, "factor:push country:br");
        a.handle(Key::Enter);
        assert_eq!(a.typing, None);
        assert_eq!(a.filter.factor, Some(Factor::Push));
        assert_eq!(a.filter.country.as_deref(), Some("BR"));
        // Typing starts from the applied filter; a bad term keeps the prompt open.
        a.handle(Key::Char('/'));
        assert_eq!(a.typing.as_deref(), Some("factor:push country:BR"));
        keys(&mut a, " factor:carrier-pigeon");
        a.handle(Key::Enter);
        assert!(a.typing.is_some());
        assert!(
            a.filter_error
                .as_deref()
                .unwrap()
                .contains("one of password")
        );
        a.handle(Key::Esc);
        assert_eq!(a.typing, None);
        assert_eq!(
            a.filter.factor,
            Some(Factor::Push),
            "a cancelled edit keeps the filter"
        );
        a.handle(Key::Esc);
        assert!(a.filter.is_empty(), "Esc clears an applied filter");
        // While typing, q and digits are text, not commands.
        a.handle(Key::Char('/'));
        keys(&mut a, "q2");
        assert!(!a.quit);
        assert_eq!(a.view().name, "executive");
        a.handle(Key::Enter);
        assert_eq!(a.filter.user.as_deref(), Some("q2"));
    }

    #[test]
    fn ranges_step_within_presets_per_view() {
        let mut a = app();
        assert_eq!(a.range().1, "30d", "executive defaults to 30d");
        a.handle(Key::Char(']'));
        assert_eq!(a.range().1, "30d", "no longer preset");
        a.handle(Key::Char('['));
        assert_eq!(a.range().1, "7d");
        a.handle(Key::Tab);
        assert_eq!(a.range().1, "6h", "on-call keeps its own range");
        for _ in 0..10 {
            a.handle(Key::Char('['));
        }
        assert_eq!(a.range().1, "15m");
    }

    #[test]
    fn focus_selection_sort_and_detail() {
        let mut a = App::new(spec::load(None).unwrap(), Some("oncall")).unwrap();
        assert_eq!(a.tables(), 4);
        a.handle(Key::Down);
        a.handle(Key::Char('j'));
        assert_eq!(a.selected, 2);
        a.clamp_selection(1);
        assert_eq!(a.selected, 0);
        for _ in 0..4 {
            a.handle(Key::Right);
        }
        assert_eq!(a.focus, 0, "focus wraps around the tables");
        a.handle(Key::Left);
        assert_eq!(a.focus, 3);
        assert_eq!(a.sort, None, "tables keep their own order until sorted");
        a.handle(Key::Char('s'));
        a.handle(Key::Char('s'));
        a.handle(Key::Char('S'));
        assert_eq!(a.sort, Some((1, true)));
        a.handle(Key::Right);
        assert_eq!(a.sort, None, "a newly focused table starts unsorted");
        a.handle(Key::Enter);
        assert!(a.detail);
        a.handle(Key::Esc);
        assert!(!a.detail);
        a.handle(Key::Interrupt);
        assert!(a.quit);
    }
}
