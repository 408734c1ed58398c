//! One canonical event as rsigma sees it: the columns of a record batch (read in place, no
//! per-event allocation) plus the per-user history fields the enricher derived for the row.
//! Field names are the canonical column names (`docs/schema.md`) and the derived names in
//! [`DERIVED_FIELDS`].

use std::borrow::Cow;

use arrow::array::{Array, BooleanArray, PrimitiveArray, StringArray};
use arrow::datatypes::{TimestampMillisecondType, UInt32Type};
use rsigma_eval::{Event as SigmaEvent, EventValue};
use serde_json::{Map, Value};

use mfascope_core::event::{Action, CanonicalBatch, Factor, Outcome, Source, col};

/// Fields the enricher adds to every event (the mfascope per-user history extension).
pub const DERIVED_FIELDS: &[&str] = &[
    "user_seen_before",
    "src_ip_new_for_user",
    "country_new_for_user",
    "device_new_for_user",
    "travel_km",
    "travel_kmh",
];

/// Per-user history facts about one event, computed before the event is learned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    /// The user authenticated successfully before (within the history TTL).
    pub user_seen_before: bool,
    /// The IP is not among the user's known IPs (`None`: no IP, or no known IPs yet).
    pub src_ip_new: Option<bool>,
    /// The country is not among the user's known countries.
    pub country_new: Option<bool>,
    /// The device is not among the user's known devices.
    pub device_new: Option<bool>,
    /// Great-circle distance (country centroids) from the user's previous successful MFA
    /// login, on successful MFA logins from another country.
    pub travel_km: Option<f64>,
    /// `travel_km` divided by the time since that login (at least one minute).
    pub travel_kmh: Option<f64>,
    /// Event id of that previous login (evidence for travel findings; not a rule field).
    pub travel_from: Option<Box<str>>,
    /// Bit `k` set: suppression `k` withholds the event from the rules it names (field
    /// `suppressed_k`, tested by the filters [`crate::suppress`] generates).
    pub suppressed: u64,
}

/// A derived field's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DerivedValue {
    /// A yes/no fact.
    Bool(bool),
    /// A measure.
    Number(f64),
}

impl Derived {
    /// Value of a derived field by name (`None`: unknown name or no value).
    pub fn get(&self, name: &str) -> Option<DerivedValue> {
        let b = |v: Option<bool>| v.map(DerivedValue::Bool);
        let n = |v: Option<f64>| v.map(DerivedValue::Number);
        match name {
            "user_seen_before" => Some(DerivedValue::Bool(self.user_seen_before)),
            "src_ip_new_for_user" => b(self.src_ip_new),
            "country_new_for_user" => b(self.country_new),
            "device_new_for_user" => b(self.device_new),
            "travel_km" => n(self.travel_km),
            "travel_kmh" => n(self.travel_kmh),
            other => {
                let k: u32 = other
                    .strip_prefix(crate::suppress::FIELD_PREFIX)?
                    .parse()
                    .ok()?;
                (k < u64::BITS).then(|| DerivedValue::Bool(self.suppressed & (1 << k) != 0))
            }
        }
    }

    /// Pin a derived field (rule test cases do); an error names the expected type.
    pub fn set(&mut self, name: &str, value: &serde_json::Value) -> Result<(), String> {
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| format!("{name} must be true or false"))
        };
        let number = || {
            value
                .as_f64()
                .ok_or_else(|| format!("{name} must be a number"))
        };
        match name {
            "user_seen_before" => self.user_seen_before = flag()?,
            "src_ip_new_for_user" => self.src_ip_new = Some(flag()?),
            "country_new_for_user" => self.country_new = Some(flag()?),
            "device_new_for_user" => self.device_new = Some(flag()?),
            "travel_km" => self.travel_km = Some(number()?),
            "travel_kmh" => self.travel_kmh = Some(number()?),
            _ => return Err(format!("{name} is not a derived field")),
        }
        Ok(())
    }
}

/// Typed columns of one canonical batch.
pub struct BatchView {
    /// `event_id`.
    pub event_id: StringArray,
    /// `time` (ms).
    pub time: PrimitiveArray<TimestampMillisecondType>,
    /// `source`.
    pub source: Vec<Option<Source>>,
    tenant: StringArray,
    /// `app`.
    pub app: StringArray,
    /// `user`.
    pub user: StringArray,
    actor: StringArray,
    session_id: StringArray,
    transaction_id: StringArray,
    /// `action`.
    pub action: Vec<Option<Action>>,
    /// `factor`.
    pub factor: Vec<Option<Factor>>,
    /// `outcome`.
    pub outcome: Vec<Option<Outcome>>,
    /// `reason`.
    pub reason: StringArray,
    latency_ms: PrimitiveArray<UInt32Type>,
    /// `src_ip`.
    pub src_ip: StringArray,
    /// `country`.
    pub country: StringArray,
    region: StringArray,
    city: StringArray,
    asn: PrimitiveArray<UInt32Type>,
    user_agent: StringArray,
    /// `device_id`.
    pub device_id: StringArray,
    phishing_resistant: BooleanArray,
    privileged: BooleanArray,
    /// `vendor_event_type`.
    pub vendor_event_type: StringArray,
    /// `raw` (redacted vendor record; null for canonical input).
    pub raw: StringArray,
}

/// Value of a nullable string column.
pub fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// A nullable string column value as a Sigma value.
fn str_value(a: &StringArray, i: usize) -> Option<EventValue<'_>> {
    opt_str(a, i).map(|x| EventValue::Str(Cow::Borrowed(x)))
}

/// A nullable integer column value as a Sigma value.
fn int_value(a: &PrimitiveArray<UInt32Type>, i: usize) -> Option<EventValue<'static>> {
    (!a.is_null(i)).then(|| EventValue::Int(i64::from(a.value(i))))
}

impl BatchView {
    /// Column views of a canonical batch (from the pipeline or from Parquet).
    pub fn of(batch: &CanonicalBatch) -> BatchView {
        let utf8 = |name: &str| batch.strings(name);
        BatchView {
            event_id: utf8(col::EVENT_ID),
            time: batch.times().clone(),
            source: batch.enums(col::SOURCE),
            tenant: utf8(col::TENANT),
            app: utf8(col::APP),
            user: utf8(col::USER),
            actor: utf8(col::ACTOR),
            session_id: utf8(col::SESSION_ID),
            transaction_id: utf8(col::TRANSACTION_ID),
            action: batch.enums(col::ACTION),
            factor: batch.enums(col::FACTOR),
            outcome: batch.enums(col::OUTCOME),
            reason: utf8(col::REASON),
            latency_ms: batch.u32s(col::LATENCY_MS).clone(),
            src_ip: utf8(col::SRC_IP),
            country: utf8(col::COUNTRY),
            region: utf8(col::REGION),
            city: utf8(col::CITY),
            asn: batch.u32s(col::ASN).clone(),
            user_agent: utf8(col::USER_AGENT),
            device_id: utf8(col::DEVICE_ID),
            phishing_resistant: batch.bools(col::PHISHING_RESISTANT).clone(),
            privileged: batch.bools(col::PRIVILEGED).clone(),
            vendor_event_type: utf8(col::VENDOR_EVENT_TYPE),
            raw: utf8(col::RAW),
        }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.time.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String-valued canonical fields of row `i` (for keyword matching and rendering).
    fn strings(&self, i: usize) -> [(&'static str, Option<&str>); 19] {
        let e = |v: Option<&'static str>| v;
        [
            (col::EVENT_ID, Some(self.event_id.value(i))),
            (col::SOURCE, e(self.source[i].map(Source::as_str))),
            (col::TENANT, opt_str(&self.tenant, i)),
            (col::APP, opt_str(&self.app, i)),
            (col::USER, Some(self.user.value(i))),
            (col::ACTOR, opt_str(&self.actor, i)),
            (col::SESSION_ID, opt_str(&self.session_id, i)),
            (col::TRANSACTION_ID, opt_str(&self.transaction_id, i)),
            (col::ACTION, e(self.action[i].map(Action::as_str))),
            (col::FACTOR, e(self.factor[i].map(Factor::as_str))),
            (col::OUTCOME, e(self.outcome[i].map(Outcome::as_str))),
            (col::REASON, opt_str(&self.reason, i)),
            (col::SRC_IP, opt_str(&self.src_ip, i)),
            (col::COUNTRY, opt_str(&self.country, i)),
            (col::REGION, opt_str(&self.region, i)),
            (col::CITY, opt_str(&self.city, i)),
            (col::USER_AGENT, opt_str(&self.user_agent, i)),
            (col::DEVICE_ID, opt_str(&self.device_id, i)),
            (
                col::VENDOR_EVENT_TYPE,
                Some(self.vendor_event_type.value(i)),
            ),
        ]
    }
}

/// Row `i` of a batch with its derived fields.
pub struct Row<'a> {
    /// The batch columns.
    pub view: &'a BatchView,
    /// Row index.
    pub i: usize,
    /// Per-user history facts.
    pub derived: &'a Derived,
}

impl Row<'_> {
    /// Event time in milliseconds.
    pub fn time_ms(&self) -> i64 {
        self.view.time.value(self.i)
    }

    /// A field by canonical or derived name; `None` for nulls and unknown names.
    fn field(&self, path: &str) -> Option<EventValue<'_>> {
        let (v, i) = (self.view, self.i);
        let word = |w: Option<&'static str>| w.map(|x| EventValue::Str(Cow::Borrowed(x)));
        match path {
            "event_id" => str_value(&v.event_id, i),
            "time" => Some(EventValue::Str(Cow::Owned(
                mfascope_core::time::format_rfc3339(self.time_ms()),
            ))),
            "source" => word(v.source[i].map(Source::as_str)),
            "tenant" => str_value(&v.tenant, i),
            "app" => str_value(&v.app, i),
            "user" => str_value(&v.user, i),
            "actor" => str_value(&v.actor, i),
            "session_id" => str_value(&v.session_id, i),
            "transaction_id" => str_value(&v.transaction_id, i),
            "action" => word(v.action[i].map(Action::as_str)),
            "factor" => word(v.factor[i].map(Factor::as_str)),
            "outcome" => word(v.outcome[i].map(Outcome::as_str)),
            "reason" => str_value(&v.reason, i),
            "latency_ms" => int_value(&v.latency_ms, i),
            "src_ip" => str_value(&v.src_ip, i),
            "country" => str_value(&v.country, i),
            "region" => str_value(&v.region, i),
            "city" => str_value(&v.city, i),
            "asn" => int_value(&v.asn, i),
            "user_agent" => str_value(&v.user_agent, i),
            "device_id" => str_value(&v.device_id, i),
            "phishing_resistant" => Some(EventValue::Bool(v.phishing_resistant.value(i))),
            "privileged" => {
                (!v.privileged.is_null(i)).then(|| EventValue::Bool(v.privileged.value(i)))
            }
            "vendor_event_type" => str_value(&v.vendor_event_type, i),
            "raw" => str_value(&v.raw, i),
            other => self.derived.get(other).map(|d| match d {
                DerivedValue::Bool(b) => EventValue::Bool(b),
                DerivedValue::Number(x) => EventValue::Float(x),
            }),
        }
    }
}

impl SigmaEvent for Row<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.field(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.view
            .strings(self.i)
            .iter()
            .any(|(_, v)| v.is_some_and(pred))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.view
            .strings(self.i)
            .into_iter()
            .filter_map(|(_, v)| v.map(Cow::Borrowed))
            .collect()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for (_, v) in self.view.strings(self.i) {
            if let Some(v) = v {
                visit(v);
            }
        }
    }

    /// The event id only: rsigma calls this for every event a correlation counts, to keep a
    /// reference to it (`Refs` mode). mfascope never asks rsigma for whole events — findings
    /// name event ids and the events themselves are in Parquet — so building the full object
    /// (30 fields) would only cost time.
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "event_id".to_string(),
            Value::String(self.view.event_id.value(self.i).to_string()),
        );
        Value::Object(m)
    }
}
