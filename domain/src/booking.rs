//! The rules checked when a client asks for a live session (DOMAIN.md, lifecycle step 1, and
//! "Session kinds and modalities"), before anything is held.

use crate::{
    ClientId, Coverage, Modality, Plan, Policy, ProviderId, Refusal, RefusalCode, Service,
    Specialty, TimeZoneName,
};
use chrono::{DateTime, Utc};

/// A parsed request for a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Whether the client agreed to the cancellation policy.
    pub accept_cancellation_policy: bool,
}

/// What the rules need to know about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderProfile {
    /// What they practise.
    pub specialty: Specialty,
}

impl BookingRequest {
    /// Checks every request-time rule; the first one broken is the answer.
    pub fn check(
        &self,
        coverage: Coverage,
        plan: &Plan,
        provider: ProviderProfile,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
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
                format!(
                    "psychiatry sessions are held by video only, not by {}",
                    self.modality
                ),
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
        if !coverage.uses_credits() {
            return refuse(
                RefusalCode::CoverageNotSupported,
                format!("{coverage} coverage cannot book live sessions yet"),
            );
        }
        if !plan.offers_modality(self.modality) {
            return refuse(
                RefusalCode::ModalityNotInPlan,
                format!(
                    "the client's plan does not offer {} sessions",
                    self.modality
                ),
            );
        }
        if !plan.offers_duration(self.duration_minutes) {
            return refuse(
                RefusalCode::DurationNotInPlan,
                format!(
                    "the client's plan offers sessions of {:?} minutes, not {}",
                    plan.durations_minutes, self.duration_minutes
                ),
            );
        }
        let earliest = policy.earliest_start(now);
        if self.starts_at < earliest {
            return refuse(
                RefusalCode::BookingNoticeTooShort,
                format!("the earliest bookable start is {}", earliest.to_rfc3339()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plans;
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
        }
    }

    fn check(
        req: &BookingRequest,
        coverage: Coverage,
        specialty: Specialty,
        now: DateTime<Utc>,
    ) -> Result<(), RefusalCode> {
        let plans = Plans::default();
        let plan = plans.get("subscription-standard").unwrap();
        req.check(
            coverage,
            plan,
            ProviderProfile { specialty },
            &Policy::default(),
            now,
        )
        .map_err(|r| r.code)
    }

    #[test]
    fn each_rule_answers_with_its_own_code() {
        let now = Utc::now();
        let ok = request(now);
        assert_eq!(
            check(&ok, Coverage::Subscription, Specialty::Therapist, now),
            Ok(())
        );

        let audio_psychiatry = BookingRequest {
            service: Service::Psychiatry,
            modality: Modality::Audio,
            ..ok.clone()
        };
        assert_eq!(
            check(
                &audio_psychiatry,
                Coverage::Subscription,
                Specialty::Psychiatrist,
                now
            ),
            Err(RefusalCode::PsychiatryRequiresVideo)
        );

        let psychiatry = BookingRequest {
            service: Service::Psychiatry,
            ..ok.clone()
        };
        assert_eq!(
            check(
                &psychiatry,
                Coverage::Subscription,
                Specialty::Therapist,
                now
            ),
            Err(RefusalCode::ProviderDoesNotOfferService)
        );
        assert_eq!(
            check(
                &psychiatry,
                Coverage::Subscription,
                Specialty::Psychiatrist,
                now
            ),
            Ok(())
        );

        let odd_length = BookingRequest {
            duration_minutes: 50,
            ..ok.clone()
        };
        assert_eq!(
            check(
                &odd_length,
                Coverage::Subscription,
                Specialty::Therapist,
                now
            ),
            Err(RefusalCode::DurationNotInPlan)
        );

        let too_soon = BookingRequest {
            starts_at: now + TimeDelta::minutes(90),
            ..ok.clone()
        };
        assert_eq!(
            check(&too_soon, Coverage::Subscription, Specialty::Therapist, now),
            Err(RefusalCode::BookingNoticeTooShort)
        );

        let no_consent = BookingRequest {
            accept_cancellation_policy: false,
            ..ok.clone()
        };
        assert_eq!(
            check(
                &no_consent,
                Coverage::Subscription,
                Specialty::Therapist,
                now
            ),
            Err(RefusalCode::CancellationPolicyNotAccepted)
        );

        assert_eq!(
            check(&ok, Coverage::Insurance, Specialty::Therapist, now),
            Err(RefusalCode::CoverageNotSupported)
        );
    }
}
