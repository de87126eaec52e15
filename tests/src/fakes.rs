//! The real `LiveSession` workflow on a worker whose activities are in-memory fakes: the same
//! contracts (`#[activity(definition = …)]`), no database, no HTTP API. The fakes keep what the
//! real ones would write (credits, fees by key, room messages, recorded snapshots) and can be
//! told to refuse a booking, to decline a charge, or to stop at a [`Pause`] so a test can act
//! while an activity runs.

use crate::temporal_address;
use chrono::{DateTime, Utc};
use livesessions_domain::lifecycle::Change;
use livesessions_domain::{
    BookingRequest, ClientId, Coverage, CreditId, CreditStatus, Currency, FeeStatus, Modality,
    Money, Policy, ProviderId, Refusal, RoomId, Service, SessionId, SessionSnapshot, SessionTerms,
    TimeZoneName,
};
use livesessions_worker::{SessionCallError, Sessions, TemporalSettings};
use livesessions_workflows::activities::{
    ChargeFee, CreditMove, FeeCharge, HoldBooking, HoldNewTime, HoldOutcome, HoldRequest,
    NewTimeRequest, OpenRoom, PostRoomMessage, RecordSession, RecordUnpaidFee, RoomNotice,
    RoomRequest, SessionRecord, SettleCredit,
};
use livesessions_workflows::{LiveSession, LiveSessionInput};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use temporalio_client::{Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions};
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::sync::{Notify, Semaphore};

/// How long a test waits for any one answer before it calls it a hang.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// A stop an activity makes: it says it has arrived, then waits until the test lets it go.
#[derive(Debug)]
pub struct Pause {
    arrived: Notify,
    release: Semaphore,
}

impl Pause {
    fn new() -> Self {
        Self { arrived: Notify::new(), release: Semaphore::new(0) }
    }

    /// Waits until the activity has arrived at the pause (at most [`ANSWER_WITHIN`]).
    pub async fn reached(&self) {
        tokio::time::timeout(ANSWER_WITHIN, self.arrived.notified())
            .await
            .expect("the paused activity runs");
    }

    /// Lets the activity go on.
    pub fn release(&self) {
        self.release.add_permits(1);
    }

    /// Stops until released, or until the activity is cancelled (the worker shuts down after a
    /// test that failed before releasing it).
    async fn stop(&self, ctx: &ActivityContext) {
        self.arrived.notify_one();
        tokio::select! {
            permit = self.release.acquire() => permit.expect("the pause is never closed").forget(),
            () = ctx.cancelled() => {}
        }
    }
}

/// A fee the fake processor took (or left outstanding), under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFee {
    /// The charge as the workflow asked for it.
    pub charge: FeeCharge,
    /// Charged, or outstanding when the fake declined it.
    pub status: FeeStatus,
}

/// What the fakes have written, as the database and the outside services would hold it.
#[derive(Debug, Default)]
struct Books {
    credits: BTreeMap<CreditId, (SessionId, CreditStatus)>,
    fees: BTreeMap<String, FakeFee>,
    room_messages: Vec<RoomNotice>,
    snapshots: Vec<SessionSnapshot>,
    /// The outbox: delivery keys, in the order they were recorded.
    deliveries: Vec<String>,
}

impl Books {
    /// Posts a room message unless one with its key is there.
    fn post(&mut self, notice: RoomNotice) {
        if !self.room_messages.iter().any(|m| m.key == notice.key) {
            self.room_messages.push(notice);
        }
    }
}

/// The fakes' shared state and controls; every fake activity holds it.
#[derive(Debug, Default)]
pub struct Fakes {
    books: Mutex<Books>,
    refuse_bookings: Mutex<Option<Refusal>>,
    decline_charges: Mutex<bool>,
    hold_new_time_pause: Mutex<Option<Arc<Pause>>>,
    record_pause: Mutex<Option<Arc<Pause>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("a fake never panics while holding its lock")
}

/// Arms a pause in `slot`: the next call of the activity stops there (only that one).
fn arm(slot: &Mutex<Option<Arc<Pause>>>) -> Arc<Pause> {
    let pause = Arc::new(Pause::new());
    *lock(slot) = Some(pause.clone());
    pause
}

/// Stops at the pause armed in `slot`, if any.
async fn stop_if_armed(slot: &Mutex<Option<Arc<Pause>>>, ctx: &ActivityContext) {
    let armed = lock(slot).take();
    if let Some(pause) = armed {
        pause.stop(ctx).await;
    }
}

impl Fakes {
    /// From now on, `hold_booking` refuses with `refusal`.
    pub fn refuse_bookings(&self, refusal: Refusal) {
        *lock(&self.refuse_bookings) = Some(refusal);
    }

    /// From now on, `charge_fee` declines (`true`: the fee stays outstanding) or charges.
    pub fn decline_charges(&self, decline: bool) {
        *lock(&self.decline_charges) = decline;
    }

    /// The next `hold_new_time` stops at the pause answered.
    pub fn pause_hold_new_time(&self) -> Arc<Pause> {
        arm(&self.hold_new_time_pause)
    }

    /// The next `record_session` stops at the pause answered (before it records).
    pub fn pause_record(&self) -> Arc<Pause> {
        arm(&self.record_pause)
    }

    /// The fees of `session` by key: each key is one fee, however often it was charged.
    pub fn fees(&self, session: SessionId) -> BTreeMap<String, FakeFee> {
        let books = lock(&self.books);
        let of_session = books.fees.iter().filter(|(_, fee)| fee.charge.session_id == session);
        of_session.map(|(key, fee)| (key.clone(), fee.clone())).collect()
    }

    /// The keys of the deliveries (emails, webhook events) the outbox holds for `session`, in the
    /// order they were recorded.
    pub fn deliveries(&self, session: SessionId) -> Vec<String> {
        let prefix = format!("{}:", session.workflow_id());
        lock(&self.books).deliveries.iter().filter(|k| k.starts_with(&prefix)).cloned().collect()
    }

    /// The messages posted to rooms about `session`, oldest first.
    pub fn room_messages(&self, session: SessionId) -> Vec<RoomNotice> {
        let books = lock(&self.books);
        books.room_messages.iter().filter(|m| m.session_id == session).cloned().collect()
    }

    /// The credits `session` has held and where each went.
    pub fn credits(&self, session: SessionId) -> BTreeMap<CreditId, CreditStatus> {
        let books = lock(&self.books);
        books
            .credits
            .iter()
            .filter(|(_, (held_by, _))| *held_by == session)
            .map(|(id, (_, status))| (*id, *status))
            .collect()
    }

    /// The newest snapshot of `session` the read model was given.
    pub fn recorded(&self, session: SessionId) -> Option<SessionSnapshot> {
        let books = lock(&self.books);
        books.snapshots.iter().filter(|s| s.id == session).max_by_key(|s| s.version).cloned()
    }

    fn reserve_credit(&self, session: SessionId) -> CreditId {
        let credit = CreditId::random();
        lock(&self.books).credits.insert(credit, (session, CreditStatus::Reserved));
        credit
    }

    fn post_fee(&self, charge: FeeCharge, status: FeeStatus) -> FeeStatus {
        let mut books = lock(&self.books);
        books.fees.entry(charge.key.clone()).or_insert(FakeFee { charge, status }).status
    }
}

/// The read model, in memory.
pub struct FakeStorage(Arc<Fakes>);

#[activities]
impl FakeStorage {
    /// Stops at its pause if one is armed; then keeps every snapshot it is given, and the room
    /// messages and the keys of the deliveries that came with it (once per key, as the database
    /// does).
    #[activity(definition = RecordSession)]
    pub async fn record_session(
        self: Arc<Self>,
        ctx: ActivityContext,
        record: SessionRecord,
    ) -> Result<(), ActivityError> {
        stop_if_armed(&self.0.record_pause, &ctx).await;
        let mut books = lock(&self.0.books);
        books.snapshots.push(record.snapshot);
        for notice in record.room_messages {
            books.post(notice);
        }
        for keyed in record.deliveries {
            if !books.deliveries.contains(&keyed.key) {
                books.deliveries.push(keyed.key);
            }
        }
        Ok(())
    }
}

/// Credits and fees, in memory: every client has credits enough, slots are always free.
pub struct FakeBilling(Arc<Fakes>);

#[activities]
impl FakeBilling {
    /// Reserves a new credit, or refuses as told.
    #[activity(definition = HoldBooking)]
    pub async fn hold_booking(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: HoldRequest,
    ) -> Result<HoldOutcome, ActivityError> {
        if let Some(refusal) = lock(&self.0.refuse_bookings).clone() {
            return Ok(HoldOutcome::Refused(refusal));
        }
        Ok(HoldOutcome::Held { credit: self.0.reserve_credit(request.session.id) })
    }

    /// Stops at its pause if one is armed; then holds the time, with a new credit when late.
    #[activity(definition = HoldNewTime)]
    pub async fn hold_new_time(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: NewTimeRequest,
    ) -> Result<HoldOutcome, ActivityError> {
        stop_if_armed(&self.0.hold_new_time_pause, &ctx).await;
        let credit = match request.late {
            true => self.0.reserve_credit(request.session_id),
            false => CreditId::random(),
        };
        Ok(HoldOutcome::Held { credit })
    }

    /// Charges once per key (declined: outstanding); a key seen before answers its first result.
    #[activity(definition = ChargeFee)]
    pub async fn charge_fee(
        self: Arc<Self>,
        _ctx: ActivityContext,
        charge: FeeCharge,
    ) -> Result<FeeStatus, ActivityError> {
        let status = match *lock(&self.0.decline_charges) {
            true => FeeStatus::Outstanding,
            false => FeeStatus::Charged,
        };
        Ok(self.0.post_fee(charge, status))
    }

    /// Posts the fee as outstanding, once per key.
    #[activity(definition = RecordUnpaidFee)]
    pub async fn record_unpaid_fee(
        self: Arc<Self>,
        _ctx: ActivityContext,
        charge: FeeCharge,
    ) -> Result<FeeStatus, ActivityError> {
        Ok(self.0.post_fee(charge, FeeStatus::Outstanding))
    }

    /// Moves the credit.
    #[activity(definition = SettleCredit)]
    pub async fn settle_credit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        movement: CreditMove,
    ) -> Result<(), ActivityError> {
        lock(&self.0.books).credits.insert(movement.credit_id, (movement.session_id, movement.to));
        Ok(())
    }
}

/// A messaging session's room messages, in memory, once per key.
pub struct FakeNotification(Arc<Fakes>);

#[activities]
impl FakeNotification {
    /// Posts a messaging session's notice, once per key.
    #[activity(definition = PostRoomMessage)]
    pub async fn post_room_message(
        self: Arc<Self>,
        _ctx: ActivityContext,
        notice: RoomNotice,
    ) -> Result<(), ActivityError> {
        lock(&self.0.books).post(notice);
        Ok(())
    }
}

/// Media rooms that exist as soon as they are asked for.
pub struct FakeMedia;

#[activities]
impl FakeMedia {
    /// A new room id.
    #[activity(definition = OpenRoom)]
    pub async fn open_room(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _request: RoomRequest,
    ) -> Result<RoomId, ActivityError> {
        Ok(RoomId::random())
    }
}

/// A worker running `LiveSession` on a task queue of
/// its own, with fake activities, on its own thread; the typed client to steer its sessions.
pub struct FakeWorker {
    /// What the fake activities hold, and their controls.
    pub fakes: Arc<Fakes>,
    /// The typed client, on this worker's task queue.
    pub sessions: Sessions,
    /// The Temporal client.
    pub temporal: Client,
    shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeWorker {
    /// Starts the worker on a new random task queue of the test binary's dev server.
    pub async fn start() -> Self {
        Self::start_on(&format!("fakes-{}", uuid::Uuid::new_v4().simple())).await
    }

    /// Starts the worker on `task_queue`, where sessions may already wait for a worker.
    pub async fn start_on(task_queue: &str) -> Self {
        let settings = settings_for(task_queue).await;
        let fakes = Arc::new(Fakes::default());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (worker_settings, worker_fakes) = (settings.clone(), fakes.clone());
        // `Worker::run` is not `Send`: it gets a thread and a runtime of its own.
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the worker");
            runtime.block_on(async move {
                let (mut worker, _runtime) = fake_worker(&worker_settings, worker_fakes).await;
                let _ = ready_tx.send(worker.shutdown_handle());
                worker.run().await.expect("the worker runs until it is shut down");
            });
        });
        let shutdown = ready_rx.await.expect("the worker starts");
        let temporal = livesessions_worker::connect(&settings).await.expect("Temporal answers");
        Self {
            fakes,
            sessions: Sessions::new(temporal.clone(), &settings),
            temporal,
            shutdown: Some(Box::new(shutdown)),
            thread: Some(thread),
        }
    }

    /// Books `input` and answers the held session; panics on a refusal.
    pub async fn book(&self, input: LiveSessionInput) -> SessionSnapshot {
        self.sessions.request(input).await.expect("the booking is held")
    }

    /// Asks for `change` and answers the workflow's answer; a hang fails the test.
    pub async fn change(
        &self,
        id: SessionId,
        change: Change,
    ) -> Result<SessionSnapshot, SessionCallError> {
        tokio::time::timeout(ANSWER_WITHIN, self.sessions.change(id, change, None))
            .await
            .unwrap_or_else(|_| {
                panic!("{} was not answered within {ANSWER_WITHIN:?}", change.name())
            })
    }

    /// Asks for `change`; panics unless it is carried out.
    pub async fn changed(&self, id: SessionId, change: Change) -> SessionSnapshot {
        self.change(id, change).await.unwrap_or_else(|e| panic!("{}: {e}", change.name()))
    }

    /// Waits for the session's workflow to close (at most [`ANSWER_WITHIN`]) and answers its
    /// result: the final snapshot.
    pub async fn result(&self, id: SessionId) -> SessionSnapshot {
        let handle = self.temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
        tokio::time::timeout(ANSWER_WITHIN, handle.get_result(WorkflowGetResultOptions::default()))
            .await
            .expect("the workflow closes")
            .expect("the workflow completes")
    }

    /// The types of the events in the session workflow's history so far, in order.
    pub async fn history_events(&self, id: SessionId) -> Vec<String> {
        use temporalio_common::protos::temporal::api::enums::v1::EventType;
        let handle = self.temporal.get_workflow_handle::<LiveSession>(id.workflow_id());
        let history = handle.fetch_history(WorkflowFetchHistoryOptions::default());
        let events = history.into_events().await.expect("a history");
        events
            .iter()
            .map(|e| EventType::try_from(e.event_type).map_or("?", |t| t.as_str_name()).to_string())
            .collect()
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown();
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            eprintln!("the fake worker's thread panicked");
        }
    }
}

/// The settings of a fake worker on `task_queue` of the test binary's dev server (and of the
/// typed client of its sessions).
pub async fn settings_for(task_queue: &str) -> TemporalSettings {
    let address = tokio::task::spawn_blocking(temporal_address).await.expect("dev server");
    TemporalSettings {
        address,
        task_queue: task_queue.into(),
        request_timeout: ANSWER_WITHIN,
        ..TemporalSettings::default()
    }
}

/// The worker, and the core runtime it was built on (which must outlive it).
async fn fake_worker(settings: &TemporalSettings, fakes: Arc<Fakes>) -> (Worker, Runtime) {
    let client = livesessions_worker::connect(settings).await.expect("Temporal answers");
    let runtime = Runtime::from_current_tokio(Default::default()).expect("a core runtime");
    let options = WorkerOptions::new(&settings.task_queue)
        .register_workflow::<LiveSession>()
        .expect("LiveSession registers")
        .register_activities(FakeStorage(fakes.clone()))
        .register_activities(FakeBilling(fakes.clone()))
        .register_activities(FakeNotification(fakes))
        .register_activities(FakeMedia)
        .graceful_shutdown_period(Duration::from_millis(500))
        .build();
    (Worker::new(&runtime, client, options).expect("a worker"), runtime)
}

/// A 30-minute therapy video session of a new subscription client with a new provider at
/// `starts_at`, under `policy`, at a fee of USD 85.
pub fn session_input(policy: Policy, starts_at: DateTime<Utc>) -> LiveSessionInput {
    let booking = BookingRequest {
        client_id: ClientId::random(),
        provider_id: ProviderId::random(),
        service: Service::Therapy,
        modality: Modality::Video,
        duration_minutes: 30,
        starts_at,
        time_zone: TimeZoneName::parse("America/New_York").expect("a zone"),
        accept_cancellation_policy: true,
        purchase_credit: false,
    };
    let usd = Currency::parse("USD").expect("a currency");
    LiveSessionInput {
        session_id: SessionId::random(),
        booking,
        coverage: Coverage::Subscription,
        terms: SessionTerms { price: Money::new(8500, usd), estimate: None },
        purchase: None,
        policy,
        webhooks: false,
    }
}
