//! Identifiers. Each is a UUID newtype, so a client id can never be passed where a provider id
//! belongs.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// A new random (v4) id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the hyphenated UUID form.
            pub fn parse(text: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(text)
                    .map(Self)
                    .map_err(|_| ParseError::new(format!("{} must be a UUID, not {:?}", $what, text)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

uuid_id!(
    /// One live session; the API mints it before the workflow starts.
    SessionId,
    "session id"
);
uuid_id!(
    /// A client (the person who books); the id comes from the calling system.
    ClientId,
    "client id"
);
uuid_id!(
    /// A provider (therapist or psychiatrist); the id comes from the calling system.
    ProviderId,
    "provider id"
);
uuid_id!(
    /// One session credit.
    CreditId,
    "credit id"
);
uuid_id!(
    /// A media room (video, audio or chat) of one session.
    RoomId,
    "room id"
);
uuid_id!(
    /// One purchase of a credit outside any session; the API derives it from the caller's
    /// Idempotency-Key, so a retry is the same purchase.
    PurchaseId,
    "purchase id"
);

uuid_id!(
    /// One waiver of an outstanding fee asked for by finance; the API derives it from the
    /// caller's Idempotency-Key when there is one. Its reason stays in the database.
    WaiverId,
    "waiver id"
);

uuid_id!(
    /// One operator action (a repair of a session, a credit granted or removed); the API derives
    /// it from the caller's Idempotency-Key when there is one. Its reason stays in the database.
    ActionId,
    "action id"
);

impl ActionId {
    /// The id of the workflow of this action when it grants or removes a credit:
    /// `credit-adjustment-<action uuid>`.
    pub fn credit_adjustment_workflow_id(&self) -> String {
        format!("credit-adjustment-{}", self.0)
    }

    /// The waiver this action makes when it waives a fee (the same UUID).
    pub const fn waiver(&self) -> WaiverId {
        WaiverId::from_uuid(self.0)
    }
}

impl PurchaseId {
    /// The id of this purchase's workflow: `credit-purchase-<purchase uuid>`.
    pub fn workflow_id(&self) -> String {
        format!("credit-purchase-{}", self.0)
    }

    /// The idempotency key of its charge and of its ledger transaction:
    /// `<workflow id>:credit_purchase`.
    pub fn charge_key(&self) -> String {
        format!("{}:credit_purchase", self.workflow_id())
    }
}

impl ClientId {
    /// The id of this client's subscription workflow: `subscription-<client uuid>`.
    pub fn subscription_workflow_id(&self) -> String {
        format!("subscription-{}", self.0)
    }
}

impl RoomId {
    /// The room of `session`: always the same id for one session, so a retried request to a
    /// media service finds the room an earlier try made instead of leaving it orphaned.
    pub fn of_session(session: SessionId) -> Self {
        Self(Uuid::new_v5(&ROOM_NAMESPACE, session.0.as_bytes()))
    }
}

/// The UUID v5 namespace of room ids derived from session ids.
const ROOM_NAMESPACE: Uuid = Uuid::from_u128(0x6c5e_2f0a_8d1b_4c3e_9a7f_1b2d_3e4f_5a6b);

/// Prefix of every live session workflow id.
pub const WORKFLOW_ID_PREFIX: &str = "live-session-";

impl SessionId {
    /// The id of this session's workflow: `live-session-<session uuid>`.
    pub fn workflow_id(&self) -> String {
        format!("{WORKFLOW_ID_PREFIX}{}", self.0)
    }

    /// The session id inside a workflow id made by [`SessionId::workflow_id`].
    pub fn from_workflow_id(workflow_id: &str) -> Result<Self, ParseError> {
        workflow_id
            .strip_prefix(WORKFLOW_ID_PREFIX)
            .ok_or_else(|| {
                ParseError::new(format!("{workflow_id:?} is not a live session workflow id"))
            })
            .and_then(Self::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_id_round_trips() {
        let id = SessionId::random();
        assert!(id.workflow_id().starts_with("live-session-"));
        assert_eq!(SessionId::from_workflow_id(&id.workflow_id()), Ok(id));
        assert!(SessionId::from_workflow_id("other-workflow").is_err());
    }

    #[test]
    fn a_session_has_one_room_id() {
        let (one, other) = (SessionId::random(), SessionId::random());
        assert_eq!(RoomId::of_session(one), RoomId::of_session(one));
        assert_ne!(RoomId::of_session(one), RoomId::of_session(other));
    }

    #[test]
    fn parse_refuses_non_uuids() {
        let err = ClientId::parse("42").unwrap_err();
        assert!(err.0.contains("client id must be a UUID"), "{err}");
    }
}
