//! A worker in a process of its own, for tests that kill it (SIGKILL) mid-activity. It is
//! `livesessions worker`: the same start-up, configured from `LIVESESSIONS__…` variables.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    livesessions::telemetry::init();
    livesessions::startup::run_worker(livesessions::Settings::load(None)?).await
}
