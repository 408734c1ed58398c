//! The dashboard's interaction state and key bindings, free of any terminal: which view is
//! shown, the time range, the filter (and the filter being typed), focus, selection, sorting,
//! the help and detail overlays. Rendering reads this; the event loop feeds it keys.

use crate::event::Factor;

use super::spec::View;
use super::state::EventRow;

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
    /// Tab.
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
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Ctrl-C.
    Interrupt,
}

/// What the user narrowed the data to (`/`), e.g. `factor:push country:BR`; a bare word matches
/// users containing it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Application (exact).
    pub app: Option<String>,
    /// Factor.
    pub factor: Option<Factor>,
    /// User (substring, case-insensitive).
    pub user: Option<String>,
    /// Country (ISO code, case-insensitive).
    pub country: Option<String>,
}

impl Filter {
    /// Parse `key:value` terms (`app`, `factor`, `user`, `country`); a bare word is a user.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for term in text.split_whitespace() {
            let (key, value) = term.split_once([':', '=']).unwrap_or(("user", term));
            let value = value.trim();
            if value.is_empty() {
                return Err(format!("{term}: empty value"));
            }
            match key {
                "app" => f.app = Some(value.to_string()),
                "user" => f.user = Some(value.to_lowercase()),
                "country" => f.country = Some(value.to_uppercase()),
                "factor" => {
                    f.factor = Some(value.parse().map_err(|_| {
                        let known: Vec<&str> = <Factor as strum::VariantNames>::VARIANTS.to_vec();
                        format!("factor {value:?}: one of {}", known.join(", "))
                    })?)
                }
                other => {
                    return Err(format!(
                        "{other}: filter by app, factor, user or country (e.g. factor:push)"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether an event passes.
    pub fn matches(&self, e: &EventRow) -> bool {
        self.app.as_ref().is_none_or(|a| e.app.as_ref() == Some(a))
            && self.factor.is_none_or(|f| e.factor == Some(f))
            && self
                .user
                .as_ref()
                .is_none_or(|u| e.user.to_lowercase().contains(u.as_str()))
            && self
                .country
                .as_ref()
                .is_none_or(|c| e.country.as_deref().map(str::to_uppercase).as_ref() == Some(c))
    }

    /// Whether a finding about `user` passes (findings carry no app, factor or country: those
    /// terms do not exclude them).
    pub fn matches_user(&self, user: Option<&str>) -> bool {
        self.user
            .as_ref()
            .is_none_or(|u| user.is_some_and(|x| x.to_lowercase().contains(u.as_str())))
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut terms = Vec::new();
        if let Some(a) = &self.app {
            terms.push(format!("app:{a}"));
        }
        if let Some(x) = self.factor {
            terms.push(format!("factor:{x}"));
        }
        if let Some(u) = &self.user {
            terms.push(format!("user:{u}"));
        }
        if let Some(c) = &self.country {
            terms.push(format!("country:{c}"));
        }
        f.write_str(&terms.join(" "))
    }
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
    /// Sort column of the focused table and whether descending.
    pub sort: (usize, bool),
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
            sort: (0, false),
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
            self.sort = (0, false);
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
                self.sort = (0, false);
            }
            Key::Left | Key::Char('h') => {
                let n = self.tables().max(1);
                self.focus = (self.focus + n - 1) % n;
                self.selected = 0;
                self.sort = (0, false);
            }
            Key::Char('s') => self.sort = (self.sort.0 + 1, self.sort.1),
            Key::Char('S') => self.sort.1 = !self.sort.1,
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
    let minutes = crate::time::parse_duration(text)
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
    use crate::tui::spec;

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
    fn filter_matches_events() {
        let row = EventRow {
            time: 0,
            event_id: "e".into(),
            source: None,
            user: "Alice@Example.com".into(),
            app: Some("vpn".into()),
            action: None,
            factor: Some(Factor::Push),
            outcome: None,
            reason: None,
            country: Some("br".into()),
            src_ip: None,
            device_id: None,
        };
        for (text, want) in [
            ("", true),
            ("alice", true),
            ("user:bob", false),
            ("factor:push country:BR", true),
            ("factor:totp", false),
            ("app:vpn", true),
            ("app:crm", false),
        ] {
            assert_eq!(Filter::parse(text).unwrap().matches(&row), want, "{text}");
        }
        assert!(Filter::parse("colour:red").is_err());
        assert!(Filter::parse("user:").is_err());
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
        assert_eq!(a.tables(), 3);
        a.handle(Key::Down);
        a.handle(Key::Char('j'));
        assert_eq!(a.selected, 2);
        a.clamp_selection(1);
        assert_eq!(a.selected, 0);
        a.handle(Key::Right);
        a.handle(Key::Right);
        a.handle(Key::Right);
        assert_eq!(a.focus, 0, "focus wraps around the tables");
        a.handle(Key::Left);
        assert_eq!(a.focus, 2);
        a.handle(Key::Char('s'));
        a.handle(Key::Char('S'));
        assert_eq!(a.sort, (1, true));
        a.handle(Key::Enter);
        assert!(a.detail);
        a.handle(Key::Esc);
        assert!(!a.detail);
        a.handle(Key::Interrupt);
        assert!(a.quit);
    }
}
