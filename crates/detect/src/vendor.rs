//! The vendor field space: rules whose logsource is a vendor's (Okta, Entra sign-in/audit, Duo,
//! Google Workspace, CloudTrail, Keycloak) run unmodified on the redacted raw record kept in the
//! `raw` column, parsed as JSON, in one rsigma engine per logsource. Shipped processing
//! pipelines map the field names public rules use onto the record shapes mfascope ingests (for
//! Azure: Sentinel column names → Event Hubs / Graph paths). Only records that normalized to a
//! canonical event are evaluated; records ignored as not about authentication are not.

use rsigma_eval::{
    CorrelationConfig, CorrelationEngine, EvaluationResult, JsonEvent, parse_pipeline,
};
use rsigma_parser::SigmaRule;

use super::DetectError;
use super::rules::{RuleSet, is_canonical};
use std::sync::LazyLock;

use mfascope_core::event::Source;
use mfascope_normalize::vendor::{Logsource, VENDORS, Vendor, of_source};
use strum::VariantNames;

/// Processing pipelines compiled into the binary (name, YAML).
pub const PIPELINES: &[(&str, &str)] = &[("azure.yml", include_str!("pipelines/azure.yml"))];

/// A Sigma logsource mfascope can feed from its sources.
pub type Space = Logsource;

/// Every vendor logsource, from the vendor registry, in `LogFormat` declaration order
/// (engine indices and lint messages follow it).
pub static SPACES: LazyLock<Vec<Space>> = LazyLock::new(|| {
    by_declaration()
        .flat_map(|v| v.logsources.iter().copied())
        .collect()
});

/// Registered vendors in `LogFormat` declaration order.
fn by_declaration() -> impl Iterator<Item = &'static Vendor> {
    let mut vendors: Vec<&'static Vendor> = VENDORS.to_vec();
    vendors.sort_by_key(|v| v.format as u8);
    vendors.into_iter()
}

/// Index in [`SPACES`] of each source's first logsource (`None`: no vendor logsource).
static FIRST_SPACE: LazyLock<Vec<Option<usize>>> = LazyLock::new(|| {
    let mut first = vec![None; Source::VARIANTS.len()];
    let mut at = 0;
    for v in by_declaration() {
        if !v.logsources.is_empty() {
            first[v.source as usize] = Some(at);
        }
        at += v.logsources.len();
    }
    first
});

/// The logsource (index in [`SPACES`]) of an event from `source`; the vendor picks among its
/// logsources by `vendor_event_type` (Entra: sign-in or audit).
pub fn space_of(source: Source, vendor_event_type: &str) -> Option<usize> {
    let first = (*FIRST_SPACE.get(source as usize)?)?;
    let vendor = of_source(source)?;
    Some(first + (vendor.logsource_of)(vendor_event_type))
}

/// True when `rule`'s logsource selects `space` (service optional in the rule).
pub fn selects(rule: &SigmaRule, space: &Space) -> bool {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    eq(&rule.logsource.product, space.product)
        && (rule.logsource.service.is_none() || eq(&rule.logsource.service, space.service))
}

/// One engine per vendor logsource that has rules.
pub struct VendorEngines {
    engines: Vec<Option<CorrelationEngine>>,
    rules: usize,
    unparsed: u64,
}

impl VendorEngines {
    /// Engines for the vendor rules of `rules`; `None` when there are none.
    pub fn new(rules: &RuleSet, config: &CorrelationConfig) -> Result<Option<Self>, DetectError> {
        let mut engines = Vec::with_capacity(SPACES.len());
        let mut count = 0;
        for space in SPACES.iter() {
            let collection = rules.collection_where(|r| !is_canonical(r) && selects(r, space));
            if collection.rules.is_empty() {
                engines.push(None);
                continue;
            }
            let mut engine = CorrelationEngine::new(config.clone());
            for (name, yaml) in PIPELINES {
                let pipeline = parse_pipeline(yaml)
                    .map_err(|e| DetectError::Compile(format!("pipeline {name}: {e}")))?;
                engine.add_pipeline(pipeline);
            }
            engine
                .add_collection(&collection)
                .map_err(|e| DetectError::Compile(e.to_string()))?;
            count += collection.rules.len() + collection.correlations.len();
            engines.push(Some(engine));
        }
        Ok((count > 0).then_some(VendorEngines {
            engines,
            rules: count,
            unparsed: 0,
        }))
    }

    /// Rules loaded across all engines.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// Raw records that were not JSON (Keycloak log lines) and so could not be evaluated.
    pub fn unparsed(&self) -> u64 {
        self.unparsed
    }

    /// Correlation state entries across all engines.
    pub fn state_count(&self) -> usize {
        self.engines
            .iter()
            .flatten()
            .map(rsigma_eval::CorrelationEngine::state_count)
            .sum()
    }

    /// Correlation groups holding evidence references.
    pub fn ref_count(&self) -> usize {
        self.engines
            .iter()
            .flatten()
            .map(rsigma_eval::CorrelationEngine::event_ref_buffer_count)
            .sum()
    }

    /// Every engine's correlation state, in engine order, exported as it is saved.
    pub(crate) fn exported(&self) -> Vec<Option<super::snapshot::Exported<'_>>> {
        self.engines
            .iter()
            .map(|e| e.as_ref().map(super::snapshot::Exported))
            .collect()
    }

    /// Restore the output of [`VendorEngines::exported`] (taken with the same rules); false
    /// when an engine refused its snapshot's version.
    pub fn import_state(&mut self, saved: Vec<Option<rsigma_eval::CorrelationSnapshot>>) -> bool {
        let mut ok = true;
        for (engine, snapshot) in self.engines.iter_mut().zip(saved) {
            if let (Some(engine), Some(snapshot)) = (engine, snapshot) {
                ok &= engine.import_state(snapshot);
            }
        }
        ok
    }

    /// Evict expired correlation state.
    pub fn evict_expired(&mut self, secs: i64) {
        for e in self.engines.iter_mut().flatten() {
            e.evict_expired(secs);
        }
    }

    /// Evaluate the raw record of an event from `space` at `secs`.
    pub fn evaluate(&mut self, space: usize, raw: &str, secs: i64) -> Vec<EvaluationResult> {
        let Some(Some(engine)) = self.engines.get_mut(space) else {
            return Vec::new();
        };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(value) => engine.process_event_at(&JsonEvent::borrow(&value), secs),
            Err(_) => {
                self.unparsed += 1;
                Vec::new()
            }
        }
    }

    /// True when `space` has an engine.
    pub fn covers(&self, space: usize) -> bool {
        self.engines.get(space).is_some_and(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry yields the logsources, and events map onto them, as the rule engine's
    /// engines are indexed (one per space, in this order).
    #[test]
    fn spaces_come_from_the_registry_in_declaration_order() {
        let got: Vec<String> = SPACES
            .iter()
            .map(|s| format!("{}/{}", s.product, s.service))
            .collect();
        assert_eq!(
            got,
            [
                "okta/okta",
                "azure/signinlogs",
                "azure/auditlogs",
                "azure/riskdetection",
                "cisco/duo",
                "google_workspace/login",
                "google_workspace/user_accounts",
                "google_workspace/admin",
                "aws/cloudtrail",
                "keycloak/keycloak"
            ]
        );
        assert_eq!(space_of(Source::Gworkspace, "login.login_success"), Some(5));
        assert_eq!(
            space_of(Source::Gworkspace, "admin.ENFORCE_STRONG_AUTHENTICATION"),
            Some(7)
        );
        assert_eq!(space_of(Source::Okta, "user.session.start"), Some(0));
        assert_eq!(space_of(Source::Entra, "signin:50074"), Some(1));
        assert_eq!(space_of(Source::Entra, "audit:Update user"), Some(2));
        assert_eq!(space_of(Source::Entra, "risk:unlikelyTravel"), Some(3));
        assert_eq!(space_of(Source::Duo, "authentication"), Some(4));
        assert_eq!(space_of(Source::Keycloak, "LOGIN"), Some(9));
        for s in [Source::Canonical, Source::Verifier, Source::Probe] {
            assert_eq!(space_of(s, "x"), None);
        }
    }
}
