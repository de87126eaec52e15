//! IANA time zones, checked against the tz database.

use crate::ParseError;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A valid IANA time zone name such as `America/New_York`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TimeZoneName {
    /// One of the names the tz database knows.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("an IANA time zone name such as America/New_York"))
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TimeZoneName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TimeZoneName")
    }
}

impl TimeZoneName {
    /// Parses an IANA name; abbreviations such as `EST` that the database does not know are refused.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        text.parse::<Tz>().map(Self).map_err(|_| {
            ParseError::new(format!("{text:?} is not an IANA time zone such as America/New_York"))
        })
    }

    /// The zone, for converting instants to local time.
    pub const fn tz(&self) -> Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iana_names_and_refuses_others() {
        assert_eq!(TimeZoneName::parse("America/New_York").unwrap().name(), "America/New_York");
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert!(TimeZoneName::parse("").is_err());
    }
}
