//! The `livesessions` service as a library: configuration, telemetry, start-up and the dev
//! supervisor. `cli` is the command line over it; the tests build the same application.

pub mod cli;
pub mod configuration;
pub mod dev;
pub mod report;
pub mod startup;
pub mod telemetry;

pub use configuration::Settings;
pub use startup::{ApiServer, Application};
