//! Free text that people and services send (names, reasons), built by `parse`: bounded in
//! length and free of control characters, NUL among them (PostgreSQL cannot store it), so such
//! text is refused at the edge, before anything is changed.

use crate::parse::ParseError;

/// Refuses `text` (called `what` in the message) if it holds a control character; `line_breaks`
/// allows line feeds, carriage returns and tabs, for text of several lines.
pub fn check_characters(what: &str, text: &str, line_breaks: bool) -> Result<(), ParseError> {
    let allowed = |c: char| !c.is_control() || (line_breaks && matches!(c, '\n' | '\r' | '\t'));
    match text.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(ParseError::new(format!(
            "{what} must not hold control characters (it holds U+{:04X})",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// A newtype over bounded text: `parse` (and serde) accept 1 to `$max` characters, not all
/// blank, with no control characters (line breaks allowed when `$line_breaks`).
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $line_breaks:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The most characters it may have.
            pub const MAX_CHARS: usize = $max;

            /// The text, if it follows the rules.
            pub fn parse(text: &str) -> Result<Self, ParseError> {
                if text.trim().is_empty() || text.chars().count() > $max {
                    return Err(ParseError::new(format!(
                        "{} must have 1 to {} characters, not all blank",
                        $what, $max
                    )));
                }
                check_characters($what, text, $line_breaks)?;
                Ok(Self(text.to_string()))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        $crate::string_serde!($name);

        #[cfg(feature = "openapi")]
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl ::utoipa::ToSchema for $name {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

bounded_text!(
    /// What messages call a person: one line of 1 to 200 characters.
    DisplayName,
    "display_name",
    200,
    false
);
bounded_text!(
    /// Why a session was cancelled, for operators: 1 to 500 characters, line breaks allowed.
    CancelReason,
    "reason",
    500,
    true
);
bounded_text!(
    /// Why finance waived a fee, kept for the books: 1 to 500 characters, line breaks allowed.
    WaiverReason,
    "reason",
    500,
    true
);
bounded_text!(
    /// Why an operator repaired a session or moved a credit, kept in the database (never in
    /// workflow history or the audit log): 1 to 500 characters, line breaks allowed.
    OperatorReason,
    "reason",
    500,
    true
);

impl OperatorReason {
    /// The same words as a fee waiver's reason (the bounds are the same), for the waiver an
    /// operator's cancellation makes.
    pub fn as_waiver_reason(&self) -> WaiverReason {
        WaiverReason(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bad_lengths_are_refused() {
        assert_eq!(DisplayName::parse("Dr. Ann Lee").unwrap().as_str(), "Dr. Ann Lee");
        for bad in ["", "  ", "A\0B", "A\nB", "\u{7}", &"x".repeat(201)] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CancelReason::parse("ill\r\nsorry\t!").is_ok());
        for bad in ["ill\0", "\u{1b}[31m", "\u{85}", &"x".repeat(501)] {
            assert!(CancelReason::parse(bad).is_err(), "{bad:?}");
        }
        let refused = serde_json::from_str::<CancelReason>("\"a\\u0000\"").unwrap_err();
        assert!(refused.to_string().contains("U+0000"), "{refused}");
    }
}
