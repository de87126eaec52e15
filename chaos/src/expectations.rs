//! What a session should have been charged once it is final: the one place that says it, so a
//! new charge is one more arm here and every invariant that counts fees follows.

use livesessions_domain::{Coverage, FeeKind, SessionSnapshot, SessionState};

/// The fees `session` (final) should carry: one late-cancellation fee for each late reschedule
/// it went through (`late_reschedules`, as the driver saw them answered), and the fee of its
/// ending: a late cancellation's, a client no-show's, or an insurance session's copay when it
/// took place (the default plans' copays are not zero). No other ending charges the client.
pub fn expected_fees(session: &SessionSnapshot, late_reschedules: u32) -> Vec<FeeKind> {
    let mut fees = vec![FeeKind::LateCancelFee; late_reschedules as usize];
    match session.state {
        SessionState::LateCancelled => fees.push(FeeKind::LateCancelFee),
        SessionState::ClientNoShow => fees.push(FeeKind::NoShowFee),
        SessionState::Completed if session.coverage == Coverage::Insurance => {
            fees.push(FeeKind::Copay)
        }
        _ => {}
    }
    fees
}
