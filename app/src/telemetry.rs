//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default: info for this service, warnings
//! for the libraries). Logs carry ids, never names, emails or notes.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str =
    "info,tower_http=warn,temporalio_sdk_core=warn,temporalio_sdk=warn,sqlx=warn";

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
