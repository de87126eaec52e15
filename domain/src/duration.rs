//! Durations as operators write them: `24h`, `10m`, `90s`, `500ms`, `7d`, or several joined
//! (`1h30m`). The same text form is used in configuration and in workflow inputs, so a policy
//! reads the same in the TOML file and in the Temporal Web UI.

use crate::ParseError;
use std::time::Duration;

const UNITS: [(&str, u128); 5] =
    [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `24h`, `10m`, `90s`, `500ms`, `7d` or a sequence of them such as `1h30m`.
pub fn parse(text: &str) -> Result<Duration, ParseError> {
    let invalid = || {
        ParseError::new(format!(
            "{text:?} is not a duration: write a whole number and a unit (d, h, m, s, ms), e.g. 24h, 10m, 90s, 500ms"
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut millis: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: u128 = rest[..digits].parse().map_err(|_| invalid())?;
        let after = &rest[digits..];
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let unit = &after[..unit_len];
        let (_, factor) = UNITS.iter().find(|(name, _)| *name == unit).ok_or_else(invalid)?;
        millis =
            number.checked_mul(*factor).and_then(|m| m.checked_add(millis)).ok_or_else(invalid)?;
        rest = &after[unit_len..];
    }
    u64::try_from(millis).map(Duration::from_millis).map_err(|_| invalid())
}

/// Writes a duration in the shortest form that [`parse`] reads back exactly (`90m`, `7d`, `0s`).
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    let (unit, factor) = UNITS
        .iter()
        .find(|(_, factor)| millis.is_multiple_of(*factor))
        .expect("every whole number of milliseconds divides by 1");
    format!("{}{unit}", millis / factor)
}

/// Serde for a `Duration` field written as text (`#[serde(with = "duration::text")]`).
pub mod text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the duration as text.
    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*duration))
    }

    /// Reads a duration from text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for a `Vec<Duration>` field written as a list of texts, or as one comma-separated text
/// (the form an environment variable takes: `24h,1h`).
pub mod text_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};
    use std::time::Duration;

    /// Writes each duration as text.
    pub fn serialize<S: Serializer>(durations: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(durations.len()))?;
        for duration in durations {
            seq.serialize_element(&super::format(*duration))?;
        }
        seq.end()
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Texts {
        List(Vec<String>),
        CommaSeparated(String),
    }

    /// Reads a list of durations from texts or from one comma-separated text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let texts = match Texts::deserialize(d)? {
            Texts::List(list) => list,
            Texts::CommaSeparated(text) if text.trim().is_empty() => Vec::new(),
            Texts::CommaSeparated(text) => text.split(',').map(str::to_string).collect(),
        };
        texts.iter().map(|text| super::parse(text).map_err(serde::de::Error::custom)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sequences() {
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in ["", "h", "10", "10 minutes", "-5m", "1.5h", "5y", "m10"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn format_is_the_shortest_exact_form() {
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(5_400)), "90m");
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format(Duration::ZERO), "0s");
        for text in ["24h", "10m", "90s", "500ms", "7d", "1h30m"] {
            let d = parse(text).unwrap();
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
