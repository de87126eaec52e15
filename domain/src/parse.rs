//! The one error every `parse` in this crate returns.

/// A value that does not follow the rules; the message is written for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Implements serde for a type as its text: serialized by `as_str`, deserialized through `parse`
/// (so serde makes the same checks as the edge).
#[macro_export]
#[doc(hidden)]
macro_rules! string_serde {
    ($name:ident) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&text).map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Implements `FromStr`, `Display` and string serde (and, with the caller's `openapi` feature,
/// a string schema) for a fieldless enum from one table of `Variant => "text"` pairs, so the
/// wire names live in exactly one place.
#[macro_export]
#[doc(hidden)]
macro_rules! text_enum {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name of this value.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the wire name; anything else is an error that lists what is allowed.
            pub fn parse(text: &str) -> Result<Self, $crate::parse::ParseError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::parse::ParseError::new(format!(
                        "{} must be one of {}, not {:?}",
                        $what,
                        [$($text),+].join(", "),
                        other
                    ))),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::parse::ParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::string_serde!($name);

        #[cfg(feature = "openapi")]
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
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
pub use text_enum;
