//! Custom search attributes that let an operator find a session in the Temporal Web UI, e.g.
//! `SessionState = 'requested' AND ProviderId = '…'`. `livesessions setup` registers
//! them on any cluster from [`ALL`] (the dev server takes them as `--search-attribute` flags).

use temporalio_common::search_attributes::{SearchAttributeKey, Timestamp};

/// The session's state (`requested`, `confirmed`, …; `refused` for a booking that was refused).
pub const SESSION_STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("SessionState");
/// The client's id.
pub const CLIENT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ClientId");
/// The provider's id.
pub const PROVIDER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ProviderId");
/// When the session starts.
pub const SESSION_STARTS_AT: SearchAttributeKey<Timestamp> =
    SearchAttributeKey::datetime("SessionStartsAt");
/// `video`, `audio` or `chat`.
pub const MODALITY: SearchAttributeKey<String> = SearchAttributeKey::keyword("Modality");
/// `subscription`, `insurance` or `eap`.
pub const COVERAGE: SearchAttributeKey<String> = SearchAttributeKey::keyword("Coverage");

/// Every custom attribute as `Name=Type`, the form `temporal server start-dev --search-attribute`
/// takes.
pub const ALL: [&str; 6] = [
    "SessionState=Keyword",
    "ClientId=Keyword",
    "ProviderId=Keyword",
    "SessionStartsAt=Datetime",
    "Modality=Keyword",
    "Coverage=Keyword",
];

/// The value `SessionState` takes for a booking refused at request time.
pub const REFUSED: &str = "refused";
