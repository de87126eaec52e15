//! The `livesessions` command (see `cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    livesessions::cli::run().await
}
