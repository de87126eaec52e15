//! Coverage decides access (DOMAIN.md, "Coverage decides access"), and what kind of provider
//! someone is.

use crate::parse::text_enum;

/// How a client's sessions are paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coverage {
    /// Direct to consumer: credits each billing period, more can be bought.
    Subscription,
    /// Health insurance: each session is authorized after the estimate is shown.
    Insurance,
    /// Employer assistance programme: a fixed number of sessions.
    Eap,
}

text_enum!(Coverage, "coverage", {
    Subscription => "subscription",
    Insurance => "insurance",
    Eap => "eap",
});

impl Coverage {
    /// Whether a session under this coverage is paid with a session credit.
    pub const fn uses_credits(&self) -> bool {
        matches!(self, Coverage::Subscription | Coverage::Eap)
    }
}

/// What a provider practises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Specialty {
    /// Talk therapy.
    Therapist,
    /// Psychiatry, including prescribing.
    Psychiatrist,
}

text_enum!(Specialty, "specialty", {
    Therapist => "therapist",
    Psychiatrist => "psychiatrist",
});
