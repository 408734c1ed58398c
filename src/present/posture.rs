//! The posture report as text tables (`mfascope report posture`, the demo's headline).

use std::fmt::Write;

use crate::sli::posture::Posture;

/// Longest list printed in full in a table; the JSON form has every row.
const SHOWN: usize = 15;

/// One line: the headline figures.
pub fn posture_headline(p: &Posture) -> String {
    format!(
        "{} active users: {} signed in without a second factor, {} rely on SMS/voice/email only, \
         {} of {} privileged lack a phishing-resistant factor; {} SMS codes cost {:.2}",
        p.active_users,
        p.users_without_mfa,
        p.weak_only_users.len(),
        p.privileged_without_phishing_resistant.len(),
        p.privileged_users,
        p.sms.messages,
        p.sms.cost
    )
}

/// Render the posture report.
pub fn posture_table(p: &Posture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "2FA coverage posture\n{}\n", posture_headline(p));
    let more = |out: &mut String, n: usize| {
        if n > SHOWN {
            let _ = writeln!(out, "  … {} more (--format json lists all)", n - SHOWN);
        }
    };
    let _ = writeln!(out, "Sign-ins without a second factor, by app");
    if p.without_mfa_by_app.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for a in &p.without_mfa_by_app {
        let _ = writeln!(
            out,
            "  {:<28} {:>6} users {:>8} sign-ins",
            a.app, a.users, a.sign_ins
        );
    }
    let _ = writeln!(
        out,
        "\nUsers whose only second factor is SMS, voice or email: {}",
        p.weak_only_users.len()
    );
    for u in p.weak_only_users.iter().take(SHOWN) {
        let _ = writeln!(out, "  {:<40} {}", u.user, u.factors);
    }
    more(&mut out, p.weak_only_users.len());
    let _ = writeln!(
        out,
        "\nPrivileged users without a phishing-resistant factor: {} of {}",
        p.privileged_without_phishing_resistant.len(),
        p.privileged_users
    );
    for u in p.privileged_without_phishing_resistant.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {:<40} {:<24} ({})",
            u.user,
            u.factors.as_deref().unwrap_or("no verification"),
            u.known_from
        );
    }
    more(&mut out, p.privileged_without_phishing_resistant.len());
    let _ = writeln!(
        out,
        "\nFactor inventory\n  {:<14} {:>8} {:>9} {:>8}",
        "factor", "users", "enrolled", "removed"
    );
    for f in &p.factors {
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>9} {:>8}",
            f.factor, f.users, f.enrolled, f.removed
        );
    }
    let _ = writeln!(
        out,
        "\nNew factor and device registrations: {}",
        p.registrations.len()
    );
    for r in p.registrations.iter().rev().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {}  {:<36} {:<16} {:<10} {}",
            r.time,
            r.user,
            r.action,
            r.factor,
            r.country.as_deref().unwrap_or("-")
        );
    }
    more(&mut out, p.registrations.len());
    let _ = writeln!(
        out,
        "\nBreak-glass account use: {}",
        p.break_glass_use.len()
    );
    for b in p.break_glass_use.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {}  {:<32} {:<14} {:<8} {:<8} {}",
            b.time,
            b.user,
            b.action,
            b.factor,
            b.outcome,
            b.src_ip.as_deref().unwrap_or("-")
        );
    }
    more(&mut out, p.break_glass_use.len());
    let _ = writeln!(
        out,
        "\nSMS one-time codes: {} (from {}) × {} = {:.2}",
        p.sms.messages, p.sms.counted_from, p.sms.price_per_message, p.sms.cost
    );
    out
}
