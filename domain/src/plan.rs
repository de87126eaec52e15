//! Plans: what a client's coverage offers (modalities, lengths), what sessions cost, the
//! insurance copay estimate, how many credits or authorizations the plan grants, and for a
//! subscription its billing period and carry-over. The table lives in configuration.

use crate::{CarryOver, Coverage, Currency, Modality, Money, ParseError, duration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The billing period of a subscription plan that does not name one.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// One session length a plan offers and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLength {
    /// Length in minutes.
    pub minutes: u32,
    /// The full session cost, in minor units: the late-cancellation and no-show fee.
    pub price_minor: i64,
    /// For insurance: the client's estimated share (copay), in minor units.
    #[serde(default)]
    pub copay_minor: Option<i64>,
}

/// One plan of the configuration's plan table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The coverage this plan belongs to.
    pub coverage: Coverage,
    /// The currency of every amount of the plan.
    pub currency: Currency,
    /// Modalities offered.
    pub modalities: Vec<Modality>,
    /// Lengths offered, with their prices.
    pub lengths: Vec<PlanLength>,
    /// Credits granted when a client joins the plan (per billing period for a subscription, the
    /// fixed count for EAP); for insurance, the sessions authorized at intake.
    pub credits: u32,
    /// What one more credit costs, in minor units; absent when the plan sells none.
    #[serde(default)]
    pub credit_price_minor: Option<i64>,
    /// A subscription's billing period (`30d` unless said): a fixed length, counted from
    /// enrolment. Other coverages ignore it.
    #[serde(default = "default_period", with = "duration::text")]
    pub period: Duration,
    /// How many unused plan credits a subscription's new period keeps (`all` unless said).
    #[serde(default)]
    pub carry_over: CarryOver,
}

fn default_period() -> Duration {
    DEFAULT_PERIOD
}

/// What a session of one length costs under a plan, fixed when it is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionTerms {
    /// The full session cost: the late-cancellation and no-show fee.
    pub price: Money,
    /// For insurance: the client's estimated charge for a session of this length (the copay
    /// collected when it takes place; the rest of the price is claimed from the insurer).
    pub estimate: Option<Money>,
}

impl SessionTerms {
    /// The insurer's part of a session that took place: the price less the client's estimate.
    /// `None` without an estimate (not insurance).
    pub fn insurer_part(&self) -> Option<Money> {
        self.estimate.map(|copay| {
            Money::new((self.price.amount_minor - copay.amount_minor).max(0), self.price.currency)
        })
    }
}

impl Plan {
    /// Whether the plan offers sessions of this modality.
    pub fn offers_modality(&self, modality: Modality) -> bool {
        self.modalities.contains(&modality)
    }

    /// The terms of a session of `minutes`, if the plan offers that length.
    pub fn terms(&self, minutes: u32) -> Option<SessionTerms> {
        let length = self.lengths.iter().find(|l| l.minutes == minutes)?;
        Some(SessionTerms {
            price: Money::new(length.price_minor, self.currency),
            estimate: length.copay_minor.map(|copay| Money::new(copay, self.currency)),
        })
    }

    /// The lengths offered, in minutes.
    pub fn minutes_offered(&self) -> Vec<u32> {
        self.lengths.iter().map(|l| l.minutes).collect()
    }

    /// The price of one more credit, if the plan sells credits.
    pub fn credit_price(&self) -> Option<Money> {
        self.credit_price_minor.map(|amount| Money::new(amount, self.currency))
    }

    fn check(&self, id: &str) -> Result<(), ParseError> {
        let problem = |what: String| Err(ParseError::new(format!("plan {id:?}: {what}")));
        if self.modalities.is_empty() || self.lengths.is_empty() {
            return problem("offers no modality or no length".into());
        }
        for length in &self.lengths {
            if length.minutes == 0
                || length.price_minor < 0
                || length.copay_minor.is_some_and(|c| c < 0)
            {
                return problem(format!(
                    "length {} has an invalid minutes, price or copay",
                    length.minutes
                ));
            }
            if length.copay_minor.is_some_and(|c| c > length.price_minor) {
                return problem(format!(
                    "length {}: copay_minor is more than price_minor (the insurer's part would be negative)",
                    length.minutes
                ));
            }
            if self.coverage == Coverage::Insurance && length.copay_minor.is_none() {
                return problem(format!(
                    "insurance length {} needs copay_minor, the estimate shown to clients",
                    length.minutes
                ));
            }
        }
        if self.credit_price_minor.is_some_and(|p| p < 0) {
            return problem("credit_price_minor is negative".into());
        }
        if self.period < Duration::from_secs(1) {
            return problem("period is shorter than a second".into());
        }
        Ok(())
    }
}

/// The plan table, by plan id; every plan is checked when the table is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Plans(BTreeMap<String, Plan>);

impl Plans {
    /// A checked table.
    pub fn new(plans: BTreeMap<String, Plan>) -> Result<Self, ParseError> {
        for (id, plan) in &plans {
            plan.check(id)?;
        }
        Ok(Self(plans))
    }

    /// The plan with this id.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.0.get(id)
    }
}

impl<'de> Deserialize<'de> for Plans {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Plans::new(BTreeMap::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Default for Plans {
    /// One plan of each coverage, in USD, offering every modality at 30, 45 and 60 minutes.
    fn default() -> Self {
        let usd = Currency::parse("USD").expect("USD is a currency");
        let lengths = |copays: bool| {
            [(30, 6_500, 2_000), (45, 8_500, 2_500), (60, 10_000, 3_000)]
                .into_iter()
                .map(|(minutes, price_minor, copay)| PlanLength {
                    minutes,
                    price_minor,
                    copay_minor: copays.then_some(copay),
                })
                .collect()
        };
        let plan = |coverage, credits, credit_price_minor| Plan {
            coverage,
            currency: usd,
            modalities: Modality::ALL.to_vec(),
            lengths: lengths(coverage == Coverage::Insurance),
            credits,
            credit_price_minor,
            period: DEFAULT_PERIOD,
            carry_over: CarryOver::All,
        };
        Self::new(BTreeMap::from([
            ("subscription-standard".to_string(), plan(Coverage::Subscription, 4, Some(8_500))),
            ("eap-standard".to_string(), plan(Coverage::Eap, 6, None)),
            ("insurance-standard".to_string(), plan(Coverage::Insurance, 1, None)),
        ]))
        .expect("the default plans are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_come_from_the_length() {
        let plans = Plans::default();
        let insurance = plans.get("insurance-standard").unwrap();
        let terms = insurance.terms(45).unwrap();
        assert_eq!(terms.price.amount_minor, 8_500);
        assert_eq!(terms.estimate.map(|m| m.amount_minor), Some(2_500));
        assert!(insurance.terms(50).is_none());
        assert_eq!(plans.get("subscription-standard").unwrap().terms(30).unwrap().estimate, None);
    }

    #[test]
    fn an_insurance_plan_without_copays_is_refused() {
        let json = serde_json::json!({"p": {"coverage": "insurance", "currency": "USD", "modalities": ["video"],
            "lengths": [{"minutes": 45, "price_minor": 100}], "credits": 1}});
        let error = serde_json::from_value::<Plans>(json).unwrap_err();
        assert!(error.to_string().contains("copay_minor"), "{error}");
    }

    #[test]
    fn a_copay_above_the_price_is_refused() {
        let json = serde_json::json!({"p": {"coverage": "insurance", "currency": "USD", "modalities": ["video"],
            "lengths": [{"minutes": 45, "price_minor": 100, "copay_minor": 101}], "credits": 1}});
        let error = serde_json::from_value::<Plans>(json).unwrap_err();
        assert!(error.to_string().contains("insurer's part would be negative"), "{error}");
    }

    #[test]
    fn a_plan_without_period_or_carry_over_renews_every_30_days_keeping_everything() {
        let json = serde_json::json!({"p": {"coverage": "subscription", "currency": "USD", "modalities": ["video"],
            "lengths": [{"minutes": 45, "price_minor": 100}], "credits": 4}});
        let plans = serde_json::from_value::<Plans>(json).unwrap();
        let plan = plans.get("p").unwrap();
        assert_eq!((plan.period, plan.carry_over), (DEFAULT_PERIOD, CarryOver::All));
        let json = serde_json::json!({"p": {"coverage": "subscription", "currency": "USD", "modalities": ["video"],
            "lengths": [{"minutes": 45, "price_minor": 100}], "credits": 4, "period": "0s"}});
        assert!(serde_json::from_value::<Plans>(json).is_err());
    }
}
