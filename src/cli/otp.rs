//! `mfascope otp code|uri`: one-time codes (oathtool-compatible) and provisioning URIs from a
//! base32 secret — handy when debugging probes and enrollments.

use crate::cli::out::outln;

use anyhow::Context;

use super::{OtpArgs, OtpCommand, OtpParams, SecretArgs};
use crate::verifier::otp::{self, Kind, Params};

/// The secret of `--secret` or the first line of `--secret-file`.
fn secret(a: &SecretArgs) -> anyhow::Result<Vec<u8>> {
    let text = match (&a.secret, &a.secret_file) {
        (Some(s), _) => s.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (None, None) => anyhow::bail!("give --secret BASE32 or --secret-file FILE"),
    };
    Ok(otp::secret_from_base32(&text)?)
}

fn params(p: &OtpParams) -> anyhow::Result<Params> {
    Ok(Params::new(p.algorithm.parse()?, p.digits, p.period)?)
}

/// Run `otp code` or `otp uri`.
pub fn run(a: OtpArgs) -> anyhow::Result<i32> {
    match a.command {
        OtpCommand::Code {
            secret: s,
            params: p,
            time,
            counter,
        } => {
            let (key, p) = (secret(&s)?, params(&p)?);
            let code = match counter {
                Some(c) => otp::code(&key, c, &p),
                None => {
                    let t = time.unwrap_or_else(|| chrono::Utc::now().timestamp());
                    otp::totp(&key, t, &p)?
                }
            };
            outln!("{code}");
        }
        OtpCommand::Uri {
            secret: s,
            params: p,
            issuer,
            account,
            counter,
        } => {
            let (key, p) = (secret(&s)?, params(&p)?);
            let kind = counter.map_or(Kind::Totp, Kind::Hotp);
            outln!("{}", otp::uri(kind, &key, &p, &issuer, &account)?);
        }
    }
    Ok(0)
}
