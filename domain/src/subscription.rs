//! Subscriptions: a subscription client's billing periods. Each period grants the plan's credits
//! once; when a period begins, the unused plan credits beyond the plan's carry-over expire.
//! Periods follow one another from enrolment, each as long as the plan's `period` when it began.

use crate::{ClientId, ParseError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many unused plan credits a new billing period keeps (`carry_over` of a plan: `"none"`,
/// `"all"`, or a number, "up to").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CarryOver {
    /// Every unused plan credit expires.
    None,
    /// At most this many are kept; the rest expire.
    UpTo(u32),
    /// All are kept (the default: no credit is ever taken back).
    #[default]
    All,
}

impl CarryOver {
    /// Of `unused` plan credits, how many the new period keeps.
    pub fn kept(self, unused: i64) -> i64 {
        match self {
            CarryOver::None => 0,
            CarryOver::UpTo(limit) => unused.min(i64::from(limit)),
            CarryOver::All => unused,
        }
    }

    /// Reads `none`, `all` or a whole number.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text.trim() {
            "none" => Ok(CarryOver::None),
            "all" => Ok(CarryOver::All),
            number => number.parse().map(CarryOver::UpTo).map_err(|_| {
                ParseError::new(format!(
                    "carry_over must be \"none\", \"all\" or a whole number, not {text:?}"
                ))
            }),
        }
    }
}

impl Serialize for CarryOver {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CarryOver::None => s.serialize_str("none"),
            CarryOver::UpTo(limit) => s.serialize_u32(*limit),
            CarryOver::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for CarryOver {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A number in TOML, text in an environment variable.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u32),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Number(limit) => Ok(CarryOver::UpTo(limit)),
            Written::Text(text) => CarryOver::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// A billing period about to begin: the input of one run of the `Subscription` workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    /// The subscribed client.
    pub client_id: ClientId,
    /// The period's number: 1 is the one begun at enrolment.
    pub period: u32,
    /// When it begins (the previous period's end).
    pub starts_at: DateTime<Utc>,
}

impl Renewal {
    /// The idempotency key of the period's grant: `subscription-<client>:credit_grant:p<n>`.
    pub fn grant_key(&self) -> String {
        format!("{}:credit_grant:p{}", self.client_id.subscription_workflow_id(), self.period)
    }

    /// The idempotency key of the expiry of the credits it does not carry over:
    /// `subscription-<client>:credit_expire:p<n>`.
    pub fn expire_key(&self) -> String {
        format!("{}:credit_expire:p{}", self.client_id.subscription_workflow_id(), self.period)
    }
}

/// One billing period as it was granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingPeriod {
    /// Its number: 1 is the one begun at enrolment.
    pub number: u32,
    /// The plan it was granted under.
    pub plan: String,
    /// When it began.
    pub starts_at: DateTime<Utc>,
    /// When it ends and the next begins.
    pub ends_at: DateTime<Utc>,
    /// Credits it granted.
    pub granted: i64,
    /// Unused plan credits of earlier periods it kept.
    pub carried_over: i64,
    /// Unused plan credits that expired when it began.
    pub expired: i64,
}

impl BillingPeriod {
    /// The period after this one, for `client`.
    pub fn next(&self, client_id: ClientId) -> Renewal {
        Renewal { client_id, period: self.number + 1, starts_at: self.ends_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carry_over_keeps_at_most_its_limit() {
        assert_eq!(CarryOver::None.kept(3), 0);
        assert_eq!(CarryOver::UpTo(2).kept(3), 2);
        assert_eq!(CarryOver::UpTo(2).kept(1), 1);
        assert_eq!(CarryOver::All.kept(3), 3);
    }

    #[test]
    fn carry_over_reads_text_and_numbers() {
        let read = |json| serde_json::from_value::<CarryOver>(json).map_err(|e| e.to_string());
        assert_eq!(read(serde_json::json!("none")), Ok(CarryOver::None));
        assert_eq!(read(serde_json::json!("all")), Ok(CarryOver::All));
        assert_eq!(read(serde_json::json!(2)), Ok(CarryOver::UpTo(2)));
        assert_eq!(read(serde_json::json!("2")), Ok(CarryOver::UpTo(2)));
        assert!(read(serde_json::json!("some")).is_err());
        assert_eq!(serde_json::to_value(CarryOver::UpTo(2)).unwrap(), serde_json::json!(2));
    }
}
