//! The `livesessions` command, built with the tests, for the test that starts the system as
//! separate processes (`tests/tests/chaos.rs`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    livesessions::cli::run().await
}
