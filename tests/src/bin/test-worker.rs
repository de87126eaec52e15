//! A worker in a process of its own, for tests that kill it (SIGKILL) mid-activity. It is
//! `livesessions worker`: the same start-up, configured from `LIVESESSIONS__…` variables.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = livesessions::Settings::load(None)?;
    livesessions::telemetry::init(settings.log.format);
    livesessions::startup::run_worker(settings).await
}
