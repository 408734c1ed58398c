//! Support tickets (the M5 SLI, "MFA-induced support tickets"): which tickets count as
//! MFA-related ([`classify`]). Ticket exports themselves (Zendesk, Jira, ServiceNow, CSV) are
//! mapped here too as issue 21 lands them.

pub mod classify;
