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
use crate::event::Source;

/// Processing pipelines compiled into the binary (name, YAML).
pub const PIPELINES: &[(&str, &str)] = &[("azure.yml", include_str!("pipelines/azure.yml"))];

/// A Sigma logsource mfascope can feed from its sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Logsource product.
    pub product: &'static str,
    /// Logsource service.
    pub service: &'static str,
}

/// Every vendor logsource, in a fixed order.
pub const SPACES: &[Space] = &[
    Space {
        product: "okta",
        service: "okta",
    },
    Space {
        product: "azure",
        service: "signinlogs",
    },
    Space {
        product: "azure",
        service: "auditlogs",
    },
    Space {
        product: "cisco",
        service: "duo",
    },
    Space {
        product: "google_workspace",
        service: "login",
    },
    Space {
        product: "aws",
        service: "cloudtrail",
    },
    Space {
        product: "keycloak",
        service: "keycloak",
    },
];

/// The logsource of an event from `source` (Entra is split by `vendor_event_type`).
pub fn space_of(source: Source, vendor_event_type: &str) -> Option<usize> {
    Some(match source {
        Source::Okta => 0,
        Source::Entra if vendor_event_type.starts_with("audit:") => 2,
        Source::Entra => 1,
        Source::Duo => 3,
        Source::Gworkspace => 4,
        Source::Cloudtrail => 5,
        Source::Keycloak => 6,
        Source::Verifier | Source::Probe | Source::Canonical => return None,
    })
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
        for space in SPACES {
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
        self.engines.iter().flatten().map(|e| e.state_count()).sum()
    }

    /// Correlation groups holding evidence references.
    pub fn ref_count(&self) -> usize {
        self.engines
            .iter()
            .flatten()
            .map(|e| e.event_ref_buffer_count())
            .sum()
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
