//! cloudtrail: a canonical event rendered as the vendor logs it (the inverse of the mapper), so
//! generated traffic exercises the real mapping code.

use serde_json::{Value, json};

use crate::vendor::s;
use mfascope_core::event::{Action, Event, Factor, Outcome};
use mfascope_core::time::format_rfc3339;

pub(super) fn render(e: &Event<'_>) -> Value {
    let user = e.user.split('@').next().unwrap_or(&e.user);
    let (name, source) = match e.action {
        // An administrator turning a user's MFA off deactivates the user's device.
        Action::PolicyChange if e.reason.as_deref() == Some("mfa_disabled") => {
            ("DeactivateMFADevice", "iam.amazonaws.com")
        }
        Action::EnrollStart => ("CreateVirtualMFADevice", "iam.amazonaws.com"),
        Action::EnrollComplete => ("EnableMFADevice", "iam.amazonaws.com"),
        Action::FactorRemove => ("DeactivateMFADevice", "iam.amazonaws.com"),
        Action::MfaChallenge => ("GetSessionToken", "sts.amazonaws.com"),
        _ => ("ConsoleLogin", "signin.amazonaws.com"),
    };
    let mfa_arn = match e.factor {
        Factor::Webauthn | Factor::U2f => format!("arn:aws:iam::111122223333:u2f/user/{user}/key"),
        _ => format!("arn:aws:iam::111122223333:mfa/{user}"),
    };
    let caller = e
        .actor
        .as_deref()
        .map_or(user, |a| a.split('@').next().unwrap_or(a));
    let mfa = matches!(e.action, Action::MfaVerify);
    let ok = matches!(e.outcome, Outcome::Success | Outcome::Challenge);
    let mut v = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDACKCEVSQ6C2EXAMPLE", "arn": format!("arn:aws:iam::111122223333:user/{caller}"), "accountId": "111122223333", "userName": caller},
        "eventTime": format_rfc3339(e.time).replace(".000Z", "Z"),
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": s(&e.src_ip), "userAgent": s(&e.user_agent),
        "requestParameters": null,
        "responseElements": {"ConsoleLogin": if ok { "Success" } else { "Failure" }},
        "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": if mfa { "Yes" } else { "No" }, "MFAIdentifier": if mfa { json!(mfa_arn) } else { Value::Null }},
        "eventID": e.event_id, "readOnly": false, "eventType": "AwsConsoleSignIn", "managementEvent": true,
        "recipientAccountId": "111122223333", "eventCategory": "Management"
    });
    if !ok {
        v["errorMessage"] = json!("Failed authentication");
    }
    if name != "ConsoleLogin" {
        v["requestParameters"] = json!({"userName": user, "serialNumber": mfa_arn});
        v.as_object_mut()
            .expect("object")
            .remove("additionalEventData");
    }
    v
}
