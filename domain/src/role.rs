//! Who calls the system (DOMAIN.md, "People and systems"; API.md, "Who is calling").

use crate::parse::text_enum;

/// The role a bearer token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A client: their own sessions only.
    Client,
    /// A provider: sessions with them only.
    Provider,
    /// A backend service acting for people: any session.
    Service,
    /// An operator: any session.
    Operator,
    /// Finance: money only.
    Finance,
}

text_enum!(Role, "role", {
    Client => "client",
    Provider => "provider",
    Service => "service",
    Operator => "operator",
    Finance => "finance",
});
