//! The `FeeCollection` workflow (`fee-collection-<fee key>`): one fee left outstanding (a
//! declined card, or a processor that could not be reached), collected on the schedule of
//! `policy.collection_schedule`, then written off, unless finance waives it first.
//!
//! Each attempt is an activity charging under a key of its own (`<fee key>:collect:<n>`), run to
//! its answer before anything else happens (retried while the processor does not answer), so an
//! attempt's money is never in doubt when the next one starts. A waiver is an update: its
//! handler claims the collection's one waiver slot before its first `.await` and waits for the
//! run loop, which carries it out at its next step: at once while it waits for an attempt, after
//! the attempt in flight otherwise (then refused if that attempt collected the fee). So a waiver
//! never races a charge, and the waiver is in the workflow's history (its reason is not: only
//! the waiver's id travels through Temporal).

#![allow(unreachable_pub)]

use crate::activities::{
    CollectionActivities, CollectionAttempt, FeeCharge, FeeSettlement, Settlement,
};
use crate::live_session::{backoff_policy, step_options};
use chrono::{DateTime, Utc};
use livesessions_domain::policy::delta;
use livesessions_domain::{CollectionState, Refusal, RefusalCode, WaiverId};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, CancellableFuture, TimerOptions, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, select,
};

/// What a collection starts with: the fee as it was left outstanding, and the schedule in force
/// then. Ids and amounts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeCollectionInput {
    /// The fee, under its original key.
    pub fee: FeeCharge,
    /// When to try again: offsets from the workflow's start.
    #[serde(with = "livesessions_domain::duration::text_list")]
    pub schedule: Vec<Duration>,
}

/// The state of one fee's collection.
#[workflow]
pub struct FeeCollection {
    fee: FeeCharge,
    /// When each attempt is due.
    attempts_at: Vec<DateTime<Utc>>,
    state: CollectionState,
    /// The waiver finance asked for, carried out by the run loop at its next step.
    waiver: Option<WaiverId>,
}

type Ctx = WorkflowContext<FeeCollection>;

#[workflow_methods]
impl FeeCollection {
    /// The collection of `input.fee`; its attempts fall due at the schedule's offsets from now.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: FeeCollectionInput) -> Self {
        let started: DateTime<Utc> =
            ctx.start_time().map(Into::into).expect("Temporal sets every workflow's start time");
        Self {
            fee: input.fee,
            attempts_at: input.schedule.iter().map(|offset| started + delta(*offset)).collect(),
            state: CollectionState::Outstanding,
            waiver: None,
        }
    }

    /// Collects, waives or writes the fee off; answers how it ended, once every waiver asked
    /// for has had its answer.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<CollectionState> {
        let result = collect(ctx).await;
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished()).await?;
        result
    }

    /// Refuses a waiver of a fee no longer owed, or while another waiver is being carried out.
    #[update_validator(waive)]
    fn validate_waive(
        &self,
        _ctx: &WorkflowContextView,
        _: &WaiverId,
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        Ok(self.admit_waiver()?)
    }

    /// Finance waives the fee (the reason is in the database under the waiver's id). Answers
    /// `waived` once the waiver is posted; refused if the attempt in flight collected it.
    #[update]
    pub async fn waive(
        ctx: &mut WorkflowContext<Self>,
        waiver: WaiverId,
    ) -> Result<CollectionState, Box<dyn Error + Send + Sync>> {
        ctx.state_mut(|s| s.admit_waiver().map(|()| s.waiver = Some(waiver)))?;
        ctx.wait_condition(|s| s.state.is_final()).await?;
        Ok(ctx.state(|s| match s.state {
            CollectionState::Waived => Ok(s.state),
            other => Err(not_outstanding(other)),
        })?)
    }
}

impl FeeCollection {
    /// Whether a waiver may be claimed now.
    fn admit_waiver(&self) -> Result<(), Refusal> {
        if self.state.is_final() {
            return Err(not_outstanding(self.state));
        }
        match self.waiver {
            Some(_) => Err(Refusal::new(
                RefusalCode::ChangeInProgress,
                "a waiver of this fee is being recorded",
            )),
            None => Ok(()),
        }
    }
}

/// The refusal of a waiver of a fee that ended `state`.
fn not_outstanding(state: CollectionState) -> Refusal {
    Refusal::new(RefusalCode::FeeNotOutstanding, format!("the fee is {state} already"))
}

/// The schedule: each attempt when it falls due, until one collects the fee; then, unless a
/// waiver came first, the write-off.
async fn collect(ctx: &Ctx) -> WorkflowResult<CollectionState> {
    let (fee, attempts_at) = ctx.state(|s| (s.fee.clone(), s.attempts_at.clone()));
    for (n, due) in attempts_at.iter().enumerate() {
        if waiver_before(ctx, *due).await? {
            break;
        }
        let attempt = CollectionAttempt {
            fee: fee.clone(),
            attempt: u32::try_from(n + 1).unwrap_or(u32::MAX),
            next_attempt_at: attempts_at.get(n + 1).copied(),
        };
        let state = ctx
            .execute_activity(CollectionActivities::collect_fee, attempt, attempt_options())
            .await?;
        if state == CollectionState::Collected {
            ctx.state_mut(|s| s.state = state);
            return Ok(state);
        }
    }
    let settlement = match ctx.state(|s| s.waiver) {
        Some(waiver) => Settlement::Waived(waiver),
        None => Settlement::WrittenOff,
    };
    let state = ctx
        .execute_activity(
            CollectionActivities::settle_fee,
            FeeSettlement { fee, settlement },
            step_options("record the fee's end"),
        )
        .await?;
    ctx.state_mut(|s| s.state = state);
    Ok(state)
}

/// Waits until `due`, or until finance asks for a waiver (its timer then cancelled, never
/// dropped); answers whether a waiver was asked for.
async fn waiver_before(ctx: &Ctx, due: DateTime<Utc>) -> WorkflowResult<bool> {
    let asked = |s: &FeeCollection| s.waiver.is_some();
    let now: DateTime<Utc> = ctx.workflow_time().map(Into::into).unwrap_or_default();
    let remaining = (due - now).to_std().unwrap_or_default();
    if remaining.is_zero() || ctx.state(asked) {
        return Ok(ctx.state(asked));
    }
    let options =
        TimerOptions::builder(remaining).summary("next collection attempt".to_string()).build();
    let mut timer = std::pin::pin!(ctx.timer(options));
    select! {
        woken = ctx.wait_condition(asked) => {
            woken?;
            timer.cancel();
            Ok(true)
        }
        fired = timer => match fired {
            TimerResult::Fired => Ok(ctx.state(asked)),
            TimerResult::Cancelled => Err(WorkflowTermination::cancelled()),
        },
    }
}

/// An attempt heartbeats while the processor answers and is retried with backoff until it
/// answers (same key each time): the next attempt, under another key, never starts while this
/// one's charge may have been made.
fn attempt_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .heartbeat_timeout(Duration::from_secs(5))
        .retry_policy(backoff_policy())
        .summary("try to collect the fee".to_string())
        .build()
}
