//! Plans: what a client's coverage offers (modalities, lengths) and how many session credits it
//! grants. The table lives in configuration.

use crate::{Coverage, Modality};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One plan of the configuration's plan table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The coverage this plan belongs to.
    pub coverage: Coverage,
    /// Modalities offered.
    pub modalities: Vec<Modality>,
    /// Session lengths offered, in minutes.
    pub durations_minutes: Vec<u32>,
    /// Session credits granted when a client joins the plan (per billing period for a
    /// subscription, the fixed count for EAP, none for insurance).
    pub credits: u32,
}

impl Plan {
    /// Whether the plan offers sessions of this modality.
    pub fn offers_modality(&self, modality: Modality) -> bool {
        self.modalities.contains(&modality)
    }

    /// Whether the plan offers sessions of this length.
    pub fn offers_duration(&self, minutes: u32) -> bool {
        self.durations_minutes.contains(&minutes)
    }
}

/// The plan table, by plan id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Plans(pub BTreeMap<String, Plan>);

impl Plans {
    /// The plan with this id.
    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.0.get(id)
    }
}

impl Default for Plans {
    /// One plan of each coverage, offering every modality at 30, 45 and 60 minutes.
    fn default() -> Self {
        let plan = |coverage, credits| Plan {
            coverage,
            modalities: Modality::ALL.to_vec(),
            durations_minutes: vec![30, 45, 60],
            credits,
        };
        Self(BTreeMap::from([
            (
                "subscription-standard".to_string(),
                plan(Coverage::Subscription, 4),
            ),
            ("eap-standard".to_string(), plan(Coverage::Eap, 6)),
            (
                "insurance-standard".to_string(),
                plan(Coverage::Insurance, 0),
            ),
        ]))
    }
}
