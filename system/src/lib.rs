//! The system under test as separate processes, and the API as its callers see it: what the
//! performance harness (`./dev bench`, `bench/`) and the chaos run (`./dev chaos`, `chaos/`)
//! share. [`processes`] starts the Temporal dev server (file store), `livesessions worker` and
//! `livesessions api` on a fresh PostgreSQL database, and crashes and restarts them on demand;
//! [`driver`] drives them over HTTP on loopback, optionally as a careful backend that retries.

pub mod driver;
pub mod processes;

pub use driver::{Answer, Booked, Driver, Pair, Unexpected};
pub use processes::{Process, System, SystemOptions};
