//! The ceiling: how fast the same dev server starts a workflow that does nothing, with a worker
//! for it in this process on a task queue of its own.

use futures::StreamExt;
use std::time::{Duration, Instant};
use temporalio_client::{Client, WorkflowStartOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use temporalio_workflow::{WorkflowContext, WorkflowResult};

/// A workflow that ends as soon as it runs.
#[workflow]
#[derive(Default)]
pub struct Noop;

#[workflow_methods]
impl Noop {
    /// Does nothing.
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

const TASK_QUEUE: &str = "bench-noop";

/// Starts `Noop` workflows, `concurrency` calls in flight, for `span`, while a worker runs
/// them; answers the starts per second.
pub async fn start_rate(
    client: &Client,
    span: Duration,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<Box<dyn Fn() + Send>>();
    let worker_client = client.clone();
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        tokio.block_on(async move {
            let runtime = Runtime::from_current_tokio(Default::default())?;
            let options = WorkerOptions::new(TASK_QUEUE).register_workflow::<Noop>()?.build();
            let mut worker = Worker::new(&runtime, worker_client, options)?;
            let _ = stop_tx.send(Box::new(worker.shutdown_handle()));
            worker.run().await?;
            anyhow::Ok(())
        })
    });
    let stop = stop_rx.recv().map_err(|_| anyhow::anyhow!("the Noop worker did not start"))?;
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let starts = futures::stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < span))
        .map(|n| {
            let options = WorkflowStartOptions::new(TASK_QUEUE, format!("noop-{run}-{n}")).build();
            client.start_workflow(Noop::run, (), options)
        })
        .buffer_unordered(concurrency)
        .filter(|start| std::future::ready(start.is_ok()))
        .count()
        .await;
    let rate = starts as f64 / started.elapsed().as_secs_f64();
    stop();
    thread.join().map_err(|_| anyhow::anyhow!("the Noop worker panicked"))??;
    Ok(rate)
}
