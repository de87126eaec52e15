//! The rules checked when a client asks for a live session (DOMAIN.md, lifecycle step 1, and
//! "Session kinds and modalities"), before anything is held.

use crate::plan::SessionTerms;
use crate::{
    ClientId, Modality, Plan, Policy, ProviderId, Refusal, RefusalCode, Service, Specialty,
    TimeZoneName,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A request for a live session: the body of `POST /v1/sessions`, and the part of the session
/// workflow's input that says what was booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookingRequest {
    /// Who books.
    pub client_id: ClientId,
    /// With whom.
    pub provider_id: ProviderId,
    /// Therapy or psychiatry.
    pub service: Service,
    /// Video, audio or chat.
    pub modality: Modality,
    /// Length in minutes.
    pub duration_minutes: u32,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// The client's zone, for messages and invites.
    pub time_zone: TimeZoneName,
    /// Whether the client agreed to the cancellation policy (must be `true`).
    pub accept_cancellation_policy: bool,
    /// `true` to buy a credit when none is left (plans that sell credits).
    #[serde(default)]
    pub purchase_credit: bool,
}

/// What the rules need to know about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderProfile {
    /// What they practise.
    pub specialty: Specialty,
}

impl BookingRequest {
    /// Checks every request-time rule; the first one broken is the answer. Answers the terms
    /// (price, insurance estimate) the session is booked on.
    pub fn check(
        &self,
        plan: &Plan,
        provider: ProviderProfile,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<SessionTerms, Refusal> {
        let refuse = |code, message: String| Err(Refusal::new(code, message));
        if !self.accept_cancellation_policy {
            return refuse(
                RefusalCode::CancellationPolicyNotAccepted,
                "the client must agree to the cancellation policy (accept_cancellation_policy: true)".into(),
            );
        }
        if self.service == Service::Psychiatry && self.modality != Modality::Video {
            return refuse(
                RefusalCode::PsychiatryRequiresVideo,
                format!("psychiatry sessions are held by video only, not by {}", self.modality),
            );
        }
        let practises = match self.service {
            Service::Therapy => Specialty::Therapist,
            Service::Psychiatry => Specialty::Psychiatrist,
        };
        if provider.specialty != practises {
            return refuse(
                RefusalCode::ProviderDoesNotOfferService,
                format!(
                    "this provider is a {} and does not offer {}",
                    provider.specialty, self.service
                ),
            );
        }
        if !plan.offers_modality(self.modality) {
            return refuse(
                RefusalCode::ModalityNotInPlan,
                format!("the client's plan does not offer {} sessions", self.modality),
            );
        }
        let Some(terms) = plan.terms(self.duration_minutes) else {
            return refuse(
                RefusalCode::DurationNotInPlan,
                format!(
                    "the client's plan offers sessions of {:?} minutes, not {}",
                    plan.minutes_offered(),
                    self.duration_minutes
                ),
            );
        };
        check_start(self.starts_at, policy, now)?;
        Ok(terms)
    }
}

/// Refuses a start closer than the booking notice allows, or further than the booking horizon
/// (for bookings and reschedules, in the API and in the workflow alike).
pub fn check_start(
    starts_at: DateTime<Utc>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let earliest = policy.earliest_start(now);
    if starts_at < earliest {
        return Err(Refusal::new(
            RefusalCode::BookingNoticeTooShort,
            format!("the earliest bookable start is {}", earliest.to_rfc3339()),
        ));
    }
    let latest = policy.latest_start(now);
    if starts_at > latest {
        return Err(Refusal::new(
            RefusalCode::BookingHorizonExceeded,
            format!("the latest bookable start is {}", latest.to_rfc3339()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plans;
    use crate::policy::delta;
    use chrono::TimeDelta;

    fn request(now: DateTime<Utc>) -> BookingRequest {
        BookingRequest {
            client_id: ClientId::random(),
            provider_id: ProviderId::random(),
            service: Service::Therapy,
            modality: Modality::Video,
            duration_minutes: 45,
            starts_at: now + TimeDelta::days(2),
            time_zone: TimeZoneName::parse("Europe/London").unwrap(),
            accept_cancellation_policy: true,
            purchase_credit: false,
        }
    }

    fn check(
        req: &BookingRequest,
        specialty: Specialty,
        now: DateTime<Utc>,
    ) -> Result<i64, RefusalCode> {
        let plans = Plans::default();
        let plan = plans.get("subscription-standard").unwrap();
        req.check(plan, ProviderProfile { specialty }, &Policy::default(), now)
            .map(|terms| terms.price.amount_minor)
            .map_err(|r| r.code)
    }

    #[test]
    fn each_rule_answers_with_its_own_code() {
        let now = Utc::now();
        let ok = request(now);
        assert_eq!(check(&ok, Specialty::Therapist, now), Ok(8_500));

        let audio_psychiatry = BookingRequest {
            service: Service::Psychiatry,
            modality: Modality::Audio,
            ..ok.clone()
        };
        assert_eq!(
            check(&audio_psychiatry, Specialty::Psychiatrist, now),
            Err(RefusalCode::PsychiatryRequiresVideo)
        );

        let psychiatry = BookingRequest { service: Service::Psychiatry, ..ok.clone() };
        assert_eq!(
            check(&psychiatry, Specialty::Therapist, now),
            Err(RefusalCode::ProviderDoesNotOfferService)
        );
        assert!(check(&psychiatry, Specialty::Psychiatrist, now).is_ok());

        let odd_length = BookingRequest { duration_minutes: 50, ..ok.clone() };
        assert_eq!(
            check(&odd_length, Specialty::Therapist, now),
            Err(RefusalCode::DurationNotInPlan)
        );

        let too_soon = BookingRequest { starts_at: now + TimeDelta::minutes(90), ..ok.clone() };
        assert_eq!(
            check(&too_soon, Specialty::Therapist, now),
            Err(RefusalCode::BookingNoticeTooShort)
        );

        let horizon = Policy::default().booking_horizon;
        let last = BookingRequest { starts_at: now + delta(horizon), ..ok.clone() };
        assert!(check(&last, Specialty::Therapist, now).is_ok());
        for starts_at in [now + delta(horizon) + TimeDelta::seconds(1), DateTime::<Utc>::MAX_UTC] {
            let too_far = BookingRequest { starts_at, ..ok.clone() };
            assert_eq!(
                check(&too_far, Specialty::Therapist, now),
                Err(RefusalCode::BookingHorizonExceeded)
            );
        }

        let no_consent = BookingRequest { accept_cancellation_policy: false, ..ok.clone() };
        assert_eq!(
            check(&no_consent, Specialty::Therapist, now),
            Err(RefusalCode::CancellationPolicyNotAccepted)
        );
    }
}
