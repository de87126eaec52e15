//! Every history kept from a release (`tests/histories/<release>/`, recorded from the real runs
//! of the lifecycle, insurance, money, operator and walking-skeleton tests) replays against the
//! current workflow code without a non-determinism error: sessions started by any kept release
//! go on under this code. A change that breaks one fails here with the release, the file, the
//! workflow id and the event the code disagrees with; it needs a `ctx.patched(..)` branch (README
//! "Changing a workflow"), never a new recording of an old release. Only this release's
//! directory is recorded (`LIVESESSIONS_RECORD_HISTORIES=1 ./dev test -p livesessions-tests`).

use livesessions_tests::{histories_dir, release_histories_dir};
use std::path::PathBuf;
use temporalio_client::WorkflowHistory;

/// Each kept release's directory, oldest first by name.
fn releases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(histories_dir())
        .expect("tests/histories exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn histories_in(release: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(release)
        .expect("a release directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_kept_history_replays_against_the_current_code() {
    let releases = releases();
    assert!(
        releases.contains(&release_histories_dir()),
        "this release keeps its histories: {}",
        release_histories_dir().display()
    );
    let replayer = livesessions_worker::replay::replayer().expect("a replayer");
    let mut replayed = 0;
    for release in &releases {
        let files = histories_in(release);
        assert!(files.len() >= 14, "{}: only {} histories", release.display(), files.len());
        for file in files {
            let history = WorkflowHistory::from_json(&std::fs::read(&file).expect("a fixture"))
                .expect("SDK history JSON");
            let workflow_id = history.workflow_id().unwrap_or("unknown").to_string();
            if let Err(error) = replayer.replay_workflow(history).await {
                panic!(
                    "release {}: {} (workflow {workflow_id}) does not replay: {error}",
                    release.file_name().unwrap().to_string_lossy(),
                    file.file_name().unwrap().to_string_lossy(),
                );
            }
            replayed += 1;
        }
    }
    println!("{replayed} histories of {} releases replayed", releases.len());
}
