//! `./dev chaos` in small (README "Chaos"): 20 lifecycles of every kind under a fixed seed, with
//! the system as separate processes on a PostgreSQL server of the run's own, the worker and the
//! API SIGKILLed at least once each, the dev server and PostgreSQL restarted once each; then
//! every invariant must be at zero.

use livesessions_chaos::{ChaosOptions, run};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_chaos_run_keeps_every_invariant() {
    let options = ChaosOptions {
        sessions: 20,
        seed: 20_261_126,
        concurrency: 16,
        livesessions: PathBuf::from(env!("CARGO_BIN_EXE_test-livesessions")),
        temporal_cli: livesessions_tests::temporal_cli(),
    };
    let summary = run(&options).await.expect("the chaos run runs to its end");
    let report = summary.render();
    println!("{report}");
    for (fault, times) in summary.fault_rows() {
        assert!(times >= 1, "{fault}: {times}\n{report}");
    }
    assert_eq!(summary.inflicted.server_restarts, 1, "{report}");
    assert_eq!(summary.inflicted.postgres_restarts, 1, "{report}");
    assert_eq!(summary.kinds.len(), 8, "every kind of lifecycle: {report}");
    assert_eq!(summary.breaches(), 0, "{report}");
}
