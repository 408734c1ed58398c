//! `mfascope verifier serve`: run the reference 2FA verifier (JSON API, rate limits, metrics,
//! canonical events to NDJSON and/or Kafka).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::kafka_publish::KafkaOut;
use crate::time::parse_duration;
use crate::verifier::engine::Config;
use crate::verifier::http::events::Outputs;
use crate::verifier::http::limits::Rate;
use crate::verifier::http::tls::TlsFiles;
use crate::verifier::http::{ServeOptions, serve};
use crate::verifier::password::Cost;

/// `mfascope verifier`.
#[derive(clap::Args, Debug)]
pub struct VerifierArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: VerifierCommand,
}

/// `mfascope verifier` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum VerifierCommand {
    /// Serve the JSON API until SIGINT/SIGTERM (prints `listening on http://ADDR`, or https://, when ready).
    Serve(Box<ServeArgs>),
}

/// `mfascope verifier serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// State directory: users, factors (secrets sealed), used codes, lockouts.
    #[arg(long)]
    pub state: PathBuf,
    /// Key sealing the OTP secrets at rest (default STATE/secret.key; created 0600).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Bearer token of the admin routes (default STATE/admin.token; created 0600).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Append every step as a canonical event (NDJSON) to this file.
    #[arg(long)]
    pub events_out: Option<PathBuf>,
    /// Also produce the events to Kafka: bootstrap servers.
    #[arg(long, value_name = "HOST:PORT", requires = "topic")]
    pub kafka: Option<String>,
    /// Kafka topic of the events.
    #[arg(long)]
    pub topic: Option<String>,
    /// librdkafka property, `key=value` (repeatable; SASL/SSL settings).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = super::parse_property)]
    pub property: Vec<(String, String)>,
    /// TOTP steps accepted either side of now.
    #[arg(long, default_value_t = 1)]
    pub skew: u64,
    /// HOTP counters accepted beyond the next expected one.
    #[arg(long, default_value_t = 10)]
    pub hotp_look_ahead: u64,
    /// HOTP counters searched by a resync (two consecutive codes).
    #[arg(long, default_value_t = 1000)]
    pub hotp_resync_window: u64,
    /// Failed second factors in a row that lock a user.
    #[arg(long, default_value_t = 5)]
    pub lockout_after: u32,
    /// How long a lockout lasts.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub lockout: Duration,
    /// How long a challenge stays open after the password.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub challenge_ttl: Duration,
    /// Session lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// How long a push waits for the device.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub push_timeout: Duration,
    /// argon2id memory (KiB) of new password hashes (OWASP baseline 19456).
    #[arg(long, default_value_t = 19456)]
    pub password_memory_kib: u32,
    /// argon2id iterations of new password hashes.
    #[arg(long, default_value_t = 2)]
    pub password_iterations: u32,
    /// Issuer in provisioning URIs.
    #[arg(long, default_value = "mfascope")]
    pub issuer: String,
    /// Requests per second per client IP on the public routes (0 = no limit).
    #[arg(long, default_value_t = 50.0)]
    pub ip_rate: f64,
    /// Burst per client IP.
    #[arg(long, default_value_t = 200)]
    pub ip_burst: u32,
    /// Login steps per second per user, known or not (0 = no limit).
    #[arg(long, default_value_t = 0.5)]
    pub user_rate: f64,
    /// Burst per user.
    #[arg(long, default_value_t = 20)]
    pub user_burst: u32,
    /// Largest request body (bytes); larger ones get 413.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_body: usize,
    /// Async worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Serve HTTPS: PEM certificate chain, leaf first (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Run `mfascope verifier`.
pub fn run(a: VerifierArgs) -> anyhow::Result<i32> {
    let VerifierCommand::Serve(a) = a.command;
    let a = *a;
    let (topic, properties) = (a.topic.unwrap_or_default(), a.property);
    let options = ServeOptions {
        listen: a.listen,
        state: a.state,
        key_file: a.key_file,
        admin_token_file: a.admin_token_file,
        outputs: Outputs {
            ndjson: a.events_out,
            publish: a.kafka.map(|brokers| {
                std::sync::Arc::new(KafkaOut {
                    brokers,
                    topic,
                    properties,
                }) as _
            }),
        },
        config: Config {
            skew: a.skew,
            hotp_look_ahead: a.hotp_look_ahead,
            hotp_resync_window: a.hotp_resync_window,
            lockout_after: a.lockout_after,
            lockout: a.lockout,
            challenge_ttl: a.challenge_ttl,
            session_ttl: a.session_ttl,
            push_timeout: a.push_timeout,
            password_cost: Cost {
                memory_kib: a.password_memory_kib,
                iterations: a.password_iterations,
                lanes: 1,
            },
            issuer: a.issuer,
        },
        ip_rate: Rate {
            per_second: a.ip_rate,
            burst: a.ip_burst,
        },
        user_rate: Rate {
            per_second: a.user_rate,
            burst: a.user_burst,
        },
        max_body: a.max_body,
        workers: a.workers,
        tls: a
            .tls_cert
            .zip(a.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
    };
    let written = serve(options, |url| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {url}");
        let _ = out.flush();
    })
    .context("the verifier stopped")?;
    eprintln!("verifier stopped; {written} events written");
    Ok(0)
}
