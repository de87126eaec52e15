//! Email addresses, built by `parse`: the plain `local@domain.tld` form that mail servers and
//! people use, never markup, quoting or several addresses in one.

use crate::parse::ParseError;

/// An email address: one `@`, a local part of 1 to 64 characters, a domain of dot-separated
/// labels (at least two, none empty), at most 254 characters in all; no whitespace, control
/// characters, angle brackets, double quotes or the other separators of RFC 5322
/// (`( ) [ ] \ , ; :`). The domain is kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The most characters an address may have (RFC 5321's path limit, less the brackets).
    pub const MAX_CHARS: usize = 254;
    /// The fewest characters an address can have: `a@b.c`.
    pub const MIN_CHARS: usize = 5;
    /// The most characters of the part before the `@`.
    pub const MAX_LOCAL_CHARS: usize = 64;

    /// The address, if it follows the rules.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let refuse = |why: &str| {
            let shown: String = text.chars().take(40).collect();
            Err(ParseError::new(format!("email {shown:?} is not an email address: {why}")))
        };
        if text.chars().count() > Self::MAX_CHARS {
            return refuse("it has more than 254 characters");
        }
        let forbidden =
            |c: char| c.is_whitespace() || c.is_control() || "<>\"()[]\\,;:".contains(c);
        if text.chars().any(forbidden) {
            return refuse(
                "it holds whitespace, a control character or one of < > \" ( ) [ ] \\ , ; :",
            );
        }
        let Some((local, domain)) = text.split_once('@') else {
            return refuse("it has no @");
        };
        if domain.contains('@') {
            return refuse("it has more than one @");
        }
        if local.is_empty() || local.chars().count() > Self::MAX_LOCAL_CHARS {
            return refuse("the part before the @ must have 1 to 64 characters");
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return refuse("the domain must be names separated by dots, such as example.com");
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

crate::string_serde!(Email);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .min_length(Some(Self::MIN_CHARS))
            .max_length(Some(Self::MAX_CHARS))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Email {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Email")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_pass_and_markup_or_junk_does_not() {
        assert_eq!(
            Email::parse("Ann.Lee+x@Example.COM").unwrap().as_str(),
            "Ann.Lee+x@example.com"
        );
        assert_eq!(
            Email::parse("o'brien@mail.example.ie").unwrap().as_str(),
            "o'brien@mail.example.ie"
        );
        assert!(Email::parse("a@b.c").is_ok());
        let long_local = format!("{}@example.com", "x".repeat(65));
        let too_long = format!("a@{}.com", "x".repeat(250));
        for bad in [
            "<script>alert(1)</script>@b.c",
            "a@b.c<script>",
            "\"a b\"@example.com",
            "a@b@c.d",
            "@example.com",
            "a@",
            "a@example",
            "a@.example.com",
            "a@example..com",
            "a@example.com.",
            "a @example.com",
            "a@example.com\n",
            "a\0@example.com",
            "Ann <a@example.com>",
            "a@example.com, b@example.com",
            "a;b@example.com",
            "",
            &long_local,
            &too_long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Email>("\"<b>@x.y\"").is_err());
    }
}
