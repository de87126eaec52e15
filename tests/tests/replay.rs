//! Histories recorded from the lifecycle tests (`tests/histories/`) replay against the current
//! workflow code without non-determinism errors. A change to the workflow that breaks this
//! needs a `ctx.patched(..)` branch, not a new fixture. Re-record with
//! `LIVESESSIONS_RECORD_HISTORIES=1 ./dev test --test lifecycle`.

use livesessions_tests::histories_dir;
use temporalio_client::WorkflowHistory;

#[tokio::test]
async fn recorded_histories_replay_against_the_current_code() {
    let mut files: Vec<_> = std::fs::read_dir(histories_dir())
        .expect("tests/histories exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "expected the recorded lifecycle histories, found {}", files.len());
    let replayer = livesessions_worker::replay::replayer().expect("a replayer");
    for file in &files {
        let history = WorkflowHistory::from_json(&std::fs::read(file).expect("a fixture"))
            .expect("SDK history JSON");
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} does not replay: {e}", file.display()));
    }
}
