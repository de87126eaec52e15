//! The policy values of DOMAIN.md. Operators change them in configuration; each workflow gets a
//! copy in its input, so a running session keeps the policy it started with.

use crate::duration;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every policy value, with the defaults of API.md's configuration table.
///
/// A copy lives in every running session's input, so it reads what a later release wrote and
/// what an earlier one left out: unknown keys are ignored and missing ones take their default
/// (the configuration refuses an unknown `policy.*` key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// How long the provider has to confirm (never past the start).
    #[serde(with = "duration::text")]
    pub confirm_window: Duration,
    /// Reminders before the start.
    #[serde(with = "duration::text_list")]
    pub reminder_offsets: Vec<Duration>,
    /// How long before the start the join link works.
    #[serde(with = "duration::text")]
    pub join_opens_before: Duration,
    /// How long after the start either side may still join.
    #[serde(with = "duration::text")]
    pub join_grace: Duration,
    /// Cancelling or rescheduling closer than this to the start is late.
    #[serde(with = "duration::text")]
    pub late_cancel_window: Duration,
    /// After length + margin with both joined, the session completes on its own.
    #[serde(with = "duration::text")]
    pub completion_margin: Duration,
    /// The earliest a session can start after it is booked.
    #[serde(with = "duration::text")]
    pub booking_notice: Duration,
    /// The latest a session can start after it is booked (or rescheduled).
    #[serde(with = "duration::text")]
    pub booking_horizon: Duration,
    /// How long an insurance client has to authorize the next session.
    #[serde(with = "duration::text")]
    pub reauthorization_window: Duration,
    /// How long a client whose provider was absent keeps the offer to reschedule with the same
    /// credit; then the credit is released to them.
    #[serde(with = "duration::text")]
    pub reschedule_offer_window: Duration,
    /// How long an asynchronous messaging session lasts.
    #[serde(with = "duration::text")]
    pub messaging_session_length: Duration,
    /// The step between the start times a slot search offers.
    #[serde(with = "duration::text")]
    pub slot_interval: Duration,
    /// When a fee left outstanding is tried again, each an offset from when it was left
    /// outstanding; after the last failed attempt it is written off.
    #[serde(with = "duration::text_list")]
    pub collection_schedule: Vec<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        Self {
            confirm_window: Duration::from_secs(24 * HOUR),
            reminder_offsets: vec![Duration::from_secs(24 * HOUR), Duration::from_secs(HOUR)],
            join_opens_before: Duration::from_secs(10 * MINUTE),
            join_grace: Duration::from_secs(10 * MINUTE),
            late_cancel_window: Duration::from_secs(24 * HOUR),
            completion_margin: Duration::from_secs(15 * MINUTE),
            booking_notice: Duration::from_secs(2 * HOUR),
            booking_horizon: Duration::from_secs(180 * 24 * HOUR),
            reauthorization_window: Duration::from_secs(7 * 24 * HOUR),
            reschedule_offer_window: Duration::from_secs(14 * 24 * HOUR),
            messaging_session_length: Duration::from_secs(7 * 24 * HOUR),
            slot_interval: Duration::from_secs(15 * MINUTE),
            collection_schedule: [1, 3, 7].map(|days| Duration::from_secs(days * 24 * HOUR)).into(),
        }
    }
}

/// A policy duration as a signed delta for instant arithmetic (saturating at chrono's limit).
pub fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

impl Policy {
    /// When a request made at `requested_at` for `starts_at` stops waiting for the provider:
    /// the confirmation window, cut short by the start.
    pub fn confirm_by(
        &self,
        requested_at: DateTime<Utc>,
        starts_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        (requested_at + delta(self.confirm_window)).min(starts_at)
    }

    /// The earliest start a booking made at `now` may ask for.
    pub fn earliest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + delta(self.booking_notice)
    }

    /// The latest start a booking made at `now` may ask for.
    pub fn latest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(delta(self.booking_horizon)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether cancelling or rescheduling at `now` a session starting at `starts_at` is late.
    pub fn is_late(&self, now: DateTime<Utc>, starts_at: DateTime<Utc>) -> bool {
        starts_at - now < delta(self.late_cancel_window)
    }

    /// When the join links of a session starting at `starts_at` work: `[opens, closes)`.
    pub fn join_window(&self, starts_at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (starts_at - delta(self.join_opens_before), starts_at + delta(self.join_grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_configuration_table() {
        let text = serde_json::to_value(Policy::default()).unwrap();
        assert_eq!(
            text,
            serde_json::json!({
                "confirm_window": "1d", "reminder_offsets": ["1d", "1h"],
                "join_opens_before": "10m", "join_grace": "10m", "late_cancel_window": "1d",
                "completion_margin": "15m", "booking_notice": "2h", "booking_horizon": "180d",
                "reauthorization_window": "7d",
                "reschedule_offer_window": "14d", "messaging_session_length": "7d",
                "slot_interval": "15m", "collection_schedule": ["1d", "3d", "7d"]
            })
        );
    }

    #[test]
    fn confirmation_never_runs_past_the_start() {
        let policy = Policy::default();
        let now = DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z").unwrap().to_utc();
        let soon = now + TimeDelta::hours(3);
        let later = now + TimeDelta::days(3);
        assert_eq!(policy.confirm_by(now, soon), soon);
        assert_eq!(policy.confirm_by(now, later), now + TimeDelta::hours(24));
    }

    #[test]
    fn a_partial_table_keeps_the_other_defaults() {
        let policy: Policy =
            serde_json::from_value(serde_json::json!({"join_grace": "90s"})).unwrap();
        assert_eq!(policy.join_grace, Duration::from_secs(90));
        assert_eq!(policy.booking_notice, Policy::default().booking_notice);
        assert!(
            serde_json::from_value::<Policy>(serde_json::json!({"join_grace": "soon"})).is_err()
        );
        // A key of another release is ignored here (running sessions read their copy back);
        // the configuration refuses one (app's `a_bad_value_or_an_unknown_key_is_a_clear_error`).
        assert!(serde_json::from_value::<Policy>(serde_json::json!({"grace": "1m"})).is_ok());
    }
}
