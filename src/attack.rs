//! The attack-exclusion policy of a command (`--attack-exclusion`, `--attack-rules`) turned into
//! what recognises attack traffic: an [`AttackMarker`] over the command's rule set, attached to
//! the SLI aggregator or handed to the SQL engine. Owns the choice of rules and the default; the
//! recognising is `mfascope-detect`'s, the counting `mfascope-sli`'s.

use anyhow::Context;

use crate::detect::RuleSet;
use crate::detect::attack::{AttackConfig, AttackMarker, DEFAULT_ATTACK_RULES};
use crate::sli::live::Aggregator;
use crate::slo::{Slo, live_config};

/// Which attack traffic is recognised, and whether it leaves the SLIs.
#[derive(Clone, Debug)]
pub struct AttackPolicy {
    /// Take attack traffic out of the SLIs and error budgets (it is counted either way).
    pub exclude: bool,
    /// Correlation rules whose campaigns are attack traffic; `None`: those of
    /// [`DEFAULT_ATTACK_RULES`] the rule set has.
    pub rules: Option<Vec<String>>,
}

impl Default for AttackPolicy {
    fn default() -> Self {
        AttackPolicy {
            exclude: true,
            rules: None,
        }
    }
}

impl AttackPolicy {
    /// The marker of this policy over `rules`; `None` when no rule is chosen.
    pub fn marker(&self, rules: &RuleSet) -> anyhow::Result<Option<AttackMarker>> {
        let names: Vec<String> = match &self.rules {
            Some(names) => names.clone(),
            None => DEFAULT_ATTACK_RULES
                .iter()
                .filter(|name| {
                    rules
                        .correlations()
                        .any(|(_, c)| c.name.as_deref() == Some(**name))
                })
                .map(ToString::to_string)
                .collect(),
        };
        if names.is_empty() {
            return Ok(None);
        }
        let marker =
            AttackMarker::new(rules, &names, AttackConfig::default()).context("--attack-rules")?;
        Ok(Some(marker))
    }

    /// A live SLI aggregator sized for `slos` that recognises this policy's attack traffic.
    pub fn aggregator(&self, slos: &[Slo], rules: &RuleSet) -> anyhow::Result<Aggregator> {
        let agg = Aggregator::new(live_config(slos));
        Ok(match self.marker(rules)? {
            Some(marker) => agg.with_attack_filter(Box::new(marker), self.exclude),
            None => agg,
        })
    }

    /// Register `attack_traffic` (and so `events_marked`) in `engine` when one of `queries`
    /// reads either.
    pub async fn mark(
        &self,
        engine: &crate::sli::Engine,
        rules: &RuleSet,
        queries: &[crate::sli::Query],
    ) -> anyhow::Result<()> {
        if !queries.iter().any(reads_marks) {
            return Ok(());
        }
        if let Some(mut marker) = self.marker(rules)? {
            engine.mark_attacks(&mut marker, self.exclude).await?;
        }
        Ok(())
    }

    /// What marking attack traffic for `queries` reads from the events, as a text naming the
    /// columns (the marker's columns and its gate's SQL); `None` when nothing is marked.
    pub fn reads(
        &self,
        rules: &RuleSet,
        queries: &[crate::sli::Query],
    ) -> anyhow::Result<Option<String>> {
        use mfascope_core::attack::AttackFilter;
        if !queries.iter().any(reads_marks) {
            return Ok(None);
        }
        Ok(self.marker(rules)?.map(|marker| {
            let mut reads = marker.columns().join(" ");
            if let Some(gate) = marker.sql_filter() {
                reads.push('\n');
                reads.push_str(&gate);
            }
            reads
        }))
    }
}

/// Whether `q` reads the attack marks (`attack_traffic`, or `events_marked` built on it).
pub fn reads_marks(q: &crate::sli::Query) -> bool {
    q.template.contains("attack_traffic") || q.template.contains("events_marked")
}
