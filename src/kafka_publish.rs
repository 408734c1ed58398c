//! The verifier's Kafka output: a [`Publisher`] over an idempotent librdkafka producer. Lives in
//! the binary layer so the verifier crate never links a broker client; owns the producer and
//! its delivery count, nothing of the verifier's state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::verifier::http::events::{OpenPublisher, PublishError, Publisher};

/// A Kafka topic to produce events to.
#[derive(Clone)]
pub struct KafkaOut {
    /// Bootstrap servers.
    pub brokers: String,
    /// The Kafka topic the events are produced to.
    pub topic: String,
    /// librdkafka properties passed through (SASL/SSL).
    pub properties: Vec<(String, String)>,
}

/// Property values are left out: they carry SASL passwords.
impl std::fmt::Debug for KafkaOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.properties.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaOut")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &keys)
            .finish()
    }
}

/// Counts deliveries Kafka refused.
#[derive(Default)]
struct Delivery {
    failed: AtomicU64,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "an event was not delivered to Kafka");
        }
    }
}

/// Messages Kafka did not acknowledge.
#[derive(Debug, thiserror::Error)]
#[error("{0} events were not acknowledged by Kafka (see the log)")]
struct Undelivered(u64);

struct KafkaPublisher {
    topic: String,
    producer: BaseProducer<Delivery>,
}

impl OpenPublisher for KafkaOut {
    fn name(&self) -> String {
        format!("Kafka topic {}", self.topic)
    }

    fn open(&self) -> Result<Box<dyn Publisher>, PublishError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "5")
            .set("enable.idempotence", "true");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        let producer: BaseProducer<Delivery> = config.create_with_context(Delivery::default())?;
        Ok(Box::new(KafkaPublisher {
            topic: self.topic.clone(),
            producer,
        }))
    }
}

impl Publisher for KafkaPublisher {
    fn name(&self) -> String {
        format!("Kafka topic {}", self.topic)
    }

    fn publish(&mut self, key: &[u8], payload: &[u8]) -> Result<(), PublishError> {
        loop {
            match self
                .producer
                .send(BaseRecord::to(&self.topic).key(key).payload(payload))
            {
                Ok(()) => {
                    self.producer.poll(Duration::ZERO);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((source, _)) => return Err(source.into()),
            }
        }
    }

    fn poll(&mut self) {
        self.producer.poll(Duration::ZERO);
    }

    fn finish(&mut self) -> Result<(), PublishError> {
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(|e| format!("events to {}: {e}", self.name()))?;
        let failed = self.producer.context().failed.load(Ordering::Relaxed);
        if failed > 0 {
            return Err(Undelivered(failed).into());
        }
        Ok(())
    }
}
