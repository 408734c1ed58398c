//! `mfascope report`: the 2FA coverage posture (`posture`) over stored events. The figures are
//! computed by the SLI layer ([`crate::sli::posture`]); this module parses flags and hands the
//! result to the presentation layer.

use clap::{Args, Subcommand};

use super::sli::{range, runtime};
use super::{DataRange, OutputFormat};
use crate::present::posture_table;
use crate::sli::posture::{Posture, Privileged};
use crate::sli::{Engine, Params};

/// `mfascope report …`.
#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// 2FA coverage posture: sign-ins without a second factor (by app), SMS/voice/email-only
    /// users, privileged users without a phishing-resistant factor, factor inventory, new
    /// registrations, break-glass use, SMS volume and cost.
    Posture(PostureArgs),
}

/// `mfascope report posture`.
#[derive(Args, Debug)]
pub struct PostureArgs {
    /// Data and time range.
    #[command(flatten)]
    pub range: DataRange,
    /// Privileged and break-glass accounts: a TOML file with `users = [...]` and
    /// `break_glass = [...]` (events do not carry group membership, so list the members).
    #[arg(long, value_name = "FILE")]
    pub privileged: Option<std::path::PathBuf>,
    /// Price of one SMS message, for the cost of SMS one-time codes.
    #[arg(long, default_value_t = 0.0079)]
    pub sms_price: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// Run a report command.
pub fn run(c: ReportCommand) -> anyhow::Result<i32> {
    match c {
        ReportCommand::Posture(a) => {
            let posture = posture(&a)?;
            match a.format {
                OutputFormat::Table => print!("{}", posture_table(&posture)),
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&posture)?),
            }
            Ok(0)
        }
    }
}

/// The posture report these flags ask for.
pub fn posture(a: &PostureArgs) -> anyhow::Result<Posture> {
    let (from, to) = range(&a.range.from, &a.range.to)?;
    anyhow::ensure!(
        a.sms_price.is_finite() && a.sms_price >= 0.0,
        "--sms-price {}: give a price of zero or more",
        a.sms_price
    );
    let privileged = match &a.privileged {
        Some(p) => Privileged::load(p)?,
        None => Privileged::default(),
    };
    let params = Params::new(from, to, crate::sli::Bucket::Day, vec![])?;
    Ok(runtime()?.block_on(async {
        let engine = Engine::open(&a.range.data, &params).await?;
        engine.posture(&privileged, a.sms_price).await
    })?)
}
