//! The activities of the `LiveSession` workflow, and the storage they and the API share.
//!
//! Each activity implements a contract of `livesessions_workflows::activities` and does its
//! work for real against the database: billing moves credits, notification posts room
//! messages, media opens rooms and mints join tokens, storage keeps the read model current.
//! Every one is idempotent, because Temporal retries them.

pub mod billing;
pub mod media;
pub mod notification;
pub mod payments;
pub mod reconciliation;
pub mod storage;
pub mod storage_activities;

pub use billing::Billing;
pub use media::Media;
pub use notification::Notification;
pub use storage::Db;
pub use storage_activities::Storage;
