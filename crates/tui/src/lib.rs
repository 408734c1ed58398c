//! The terminal dashboard (`mfascope dashboard`): views defined in `dashboards/*.toml`
//! ([`spec`]), drawn with ratatui from the live state — never from raw events.

pub mod app;
pub mod data;
pub mod filter;
pub mod model;
pub mod render;
pub mod spec;
pub mod state;
