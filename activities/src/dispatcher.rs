//! The outbox dispatcher: runs beside the worker and sends every delivery the workflows wrote to
//! the outbox (emails, webhook events), retrying each with backoff (1 s doubling to 5 min) until
//! it is accepted. A mail server down for an hour delays its emails, never a session, and costs
//! the Temporal server nothing: a delivery is a row, not a workflow.

use crate::Notification;
use crate::storage::{Db, outbox};
use chrono::{TimeDelta, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed delivery stays leased to one dispatcher.
const LEASE: TimeDelta = TimeDelta::seconds(60);
/// How many deliveries one round claims.
const BATCH: i64 = 20;
/// How long an idle dispatcher waits before it looks again.
const IDLE: Duration = Duration::from_millis(200);

/// Sends what the outbox holds.
pub struct Dispatcher {
    db: Db,
    notification: Arc<Notification>,
}

/// When a delivery that failed `attempts` times is tried again: 1 s, doubling, at most 5 min.
pub fn backoff(attempts: i32) -> TimeDelta {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(9);
    TimeDelta::seconds(1_i64 << doublings).min(TimeDelta::minutes(5))
}

impl Dispatcher {
    /// A dispatcher for the outbox of `db`, sending through `notification`.
    pub fn new(db: Db, notification: Arc<Notification>) -> Self {
        Self { db, notification }
    }

    /// Sends due deliveries until `stop` completes.
    pub async fn run_until(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let idle = match self.round().await {
                Ok(claimed) => claimed == 0,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "the outbox could not be read");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }

    /// Claims a batch of due deliveries and sends them at once; answers how many it claimed.
    async fn round(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let due = outbox::claim_due(&self.db, now, now + LEASE, BATCH).await?;
        let claimed = due.len();
        let sends = due.into_iter().map(|pending| async move {
            match self.notification.deliver(&pending.delivery).await {
                Ok(()) => outbox::sent(&self.db, &pending.key, Utc::now()).await,
                Err(error) => {
                    let retry_at = Utc::now() + backoff(pending.attempts);
                    tracing::warn!(key = %pending.key, attempts = pending.attempts, error = %format!("{error:#}"), "delivery failed; retrying");
                    outbox::failed(&self.db, &pending.key, &format!("{error:#}"), retry_at).await
                }
            }
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_to_five_minutes() {
        let seconds: Vec<i64> = (1..=11).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
