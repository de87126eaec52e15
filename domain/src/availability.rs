//! A provider's availability — weekly working hours in their IANA zone plus dated exceptions
//! (days off, extra hours) — and the slot search: the start times a client can book.
//!
//! Hours are wall-clock times in the provider's zone; each working interval is turned into real
//! instants and slots step through real time. On a daylight-saving day a 9–17 day is one hour
//! shorter or longer, no wall-clock time that does not exist is offered, and no instant twice.

use crate::{ParseError, Refusal, RefusalCode};
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Wall-clock hours `[start, end)` within one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// The start.
    pub start: WallClock,
    /// The end, after `start`.
    pub end: WallClock,
}

/// Working hours on one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    /// `monday` … `sunday`.
    #[cfg_attr(feature = "openapi", schema(schema_with = weekday::schema, example = "monday"))]
    #[serde(with = "weekday")]
    pub day: Weekday,
    /// The start.
    pub start: WallClock,
    /// The end, after `start`.
    pub end: WallClock,
}

impl WeeklyHours {
    /// Its hours.
    pub const fn hours(&self) -> Hours {
        Hours { start: self.start, end: self.end }
    }
}

/// A time of day on the wall clock, built by `parse`: `HH:MM`, `HH:MM:SS` or
/// `HH:MM:SS.fraction` (1 to 9 digits), hours `00` to `23`; nothing looser (no single digits,
/// spaces or leap seconds), as the OpenAPI document's pattern says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallClock(NaiveTime);

impl WallClock {
    /// The form, as a regular expression (the OpenAPI document's `pattern`).
    pub const PATTERN: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?$";

    /// The time, if `text` has the form.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let refused =
            || ParseError::new(format!("a time must be HH:MM (00:00 to 23:59), not {text:?}"));
        if !Self::well_formed(text) {
            return Err(refused());
        }
        text.parse().map(Self).map_err(|_| refused())
    }

    /// Whether `text` has the form of [`WallClock::PATTERN`].
    fn well_formed(text: &str) -> bool {
        let digits = |part: &str, len: usize, first_max: u8| {
            part.len() == len
                && part.bytes().all(|b| b.is_ascii_digit())
                && part.as_bytes()[0] <= first_max
        };
        let (time, fraction) = match text.split_once('.') {
            Some((time, fraction)) => (time, Some(fraction)),
            None => (text, None),
        };
        let parts: Vec<&str> = time.split(':').collect();
        let hour = parts.first().is_some_and(|h| digits(h, 2, b'2') && *h < "24");
        let minute = parts.get(1).is_some_and(|m| digits(m, 2, b'5'));
        let second = match parts.get(2) {
            Some(second) => digits(second, 2, b'5'),
            None => fraction.is_none(),
        };
        let fraction =
            fraction.is_none_or(|f| (1..=9).contains(&f.len()) && digits(f, f.len(), b'9'));
        parts.len() <= 3 && hour && minute && second && fraction
    }

    /// The time.
    pub const fn time(self) -> NaiveTime {
        self.0
    }
}

impl std::str::FromStr for WallClock {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Self, ParseError> {
        Self::parse(text)
    }
}

impl std::fmt::Display for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for WallClock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WallClock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for WallClock {
    /// A string of [`WallClock::PATTERN`]'s form.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let longest = "HH:MM:SS.123456789".len();
        let form = "HH:MM (seconds and a fraction may follow)";
        let builder = ObjectBuilder::new().schema_type(Type::String).description(Some(form));
        builder.pattern(Some(Self::PATTERN)).max_length(Some(longest)).examples(["09:00"]).into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for WallClock {}

/// A dated exception: a day off, or extra hours on that date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The date, in the provider's zone.
    pub date: NaiveDate,
    /// `true`: no working hours that day (the extra hours below still apply).
    #[serde(default)]
    pub off: bool,
    /// Extra hours that day (at most 10, not overlapping).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub hours: Vec<Hours>,
}

/// A provider's availability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// Weekly working hours: at most 70 entries, not overlapping on one day.
    #[cfg_attr(feature = "openapi", schema(max_items = 70))]
    pub weekly: Vec<WeeklyHours>,
    /// Dated exceptions: at most 366, one a date.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 366))]
    pub exceptions: Vec<Exception>,
}

mod weekday {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    const NAMES: [(&str, Weekday); 7] = [
        ("monday", Weekday::Mon),
        ("tuesday", Weekday::Tue),
        ("wednesday", Weekday::Wed),
        ("thursday", Weekday::Thu),
        ("friday", Weekday::Fri),
        ("saturday", Weekday::Sat),
        ("sunday", Weekday::Sun),
    ];

    pub fn serialize<S: Serializer>(day: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        // NAMES runs Monday to Sunday, as `num_days_from_monday` counts.
        s.serialize_str(NAMES[day.num_days_from_monday() as usize].0)
    }

    /// The schema of a day: one of the names.
    #[cfg(feature = "openapi")]
    pub fn schema() -> utoipa::openapi::schema::Object {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(NAMES.iter().map(|(name, _)| *name)))
            .build()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let text = String::deserialize(d)?;
        NAMES.iter().find(|(name, _)| *name == text).map(|(_, day)| *day).ok_or_else(|| {
            serde::de::Error::custom(format!("day must be monday … sunday, not {text:?}"))
        })
    }
}

/// At most this many weekly entries in one availability (ten a weekday).
pub const MAX_WEEKLY_HOURS: usize = 70;
/// At most this many dated exceptions in one availability (a year of them).
pub const MAX_EXCEPTIONS: usize = 366;
/// At most this many intervals in one exception.
pub const MAX_EXCEPTION_HOURS: usize = 10;

/// The first two of `hours` that overlap, if any (back-to-back hours do not).
fn first_overlap(hours: impl Iterator<Item = Hours>) -> Option<(Hours, Hours)> {
    let mut sorted: Vec<Hours> = hours.collect();
    sorted.sort_by_key(|h| (h.start, h.end));
    sorted.windows(2).find(|pair| pair[1].start < pair[0].end).map(|pair| (pair[0], pair[1]))
}

impl Availability {
    /// Checks the form (what the OpenAPI document states): at most [`MAX_WEEKLY_HOURS`] weekly
    /// entries, [`MAX_EXCEPTIONS`] exceptions of at most [`MAX_EXCEPTION_HOURS`] intervals each.
    pub fn check(&self) -> Result<(), ParseError> {
        if self.weekly.len() > MAX_WEEKLY_HOURS || self.exceptions.len() > MAX_EXCEPTIONS {
            return Err(ParseError::new(format!(
                "availability has at most {MAX_WEEKLY_HOURS} weekly entries and \
                 {MAX_EXCEPTIONS} exceptions"
            )));
        }
        if let Some(crowded) = self.exceptions.iter().find(|e| e.hours.len() > MAX_EXCEPTION_HOURS)
        {
            return Err(ParseError::new(format!(
                "the exception of {} has more than {MAX_EXCEPTION_HOURS} hours",
                crowded.date
            )));
        }
        Ok(())
    }

    /// Checks the meaning: every interval ends after it starts (`422 invalid_time_range`), one
    /// exception a date, and no hours that overlap on one weekday or within one exception
    /// (`422 overlapping_availability`). An exception's hours may overlap the weekly hours they
    /// add to.
    pub fn check_meaning(&self) -> Result<(), Refusal> {
        let all = self
            .weekly
            .iter()
            .map(WeeklyHours::hours)
            .chain(self.exceptions.iter().flat_map(|e| e.hours.iter().copied()));
        for hours in all {
            if hours.end <= hours.start {
                return Err(Refusal::new(
                    RefusalCode::InvalidTimeRange,
                    format!("hours {}–{} end before they start", hours.start, hours.end),
                ));
            }
        }
        let refuse =
            |message: String| Err(Refusal::new(RefusalCode::OverlappingAvailability, message));
        let mut dates: Vec<NaiveDate> = self.exceptions.iter().map(|e| e.date).collect();
        dates.sort();
        if let Some(pair) = dates.windows(2).find(|pair| pair[0] == pair[1]) {
            return refuse(format!("{} has more than one exception; give it one", pair[0]));
        }
        let mut days: Vec<Weekday> = self.weekly.iter().map(|w| w.day).collect();
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        for day in days {
            let hours = self.weekly.iter().filter(|w| w.day == day).map(WeeklyHours::hours);
            if let Some((a, b)) = first_overlap(hours) {
                return refuse(format!(
                    "{day}: hours {}–{} and {}–{} overlap",
                    a.start, a.end, b.start, b.end
                ));
            }
        }
        for exception in &self.exceptions {
            if let Some((a, b)) = first_overlap(exception.hours.iter().copied()) {
                return refuse(format!(
                    "{}: hours {}–{} and {}–{} overlap",
                    exception.date, a.start, a.end, b.start, b.end
                ));
            }
        }
        Ok(())
    }

    /// The wall-clock intervals of `date`.
    fn hours_on(&self, date: NaiveDate) -> Vec<Hours> {
        let exceptions: Vec<&Exception> =
            self.exceptions.iter().filter(|e| e.date == date).collect();
        let mut hours: Vec<Hours> = if exceptions.iter().any(|e| e.off) {
            Vec::new()
        } else {
            self.weekly.iter().filter(|w| w.day == date.weekday()).map(WeeklyHours::hours).collect()
        };
        hours.extend(exceptions.iter().flat_map(|e| e.hours.iter().copied()));
        hours
    }
}

/// A stretch of time that suits a client (`[starts_at, ends_at)`), shared when no slot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// From.
    pub starts_at: DateTime<Utc>,
    /// Until, after `starts_at`.
    pub ends_at: DateTime<Utc>,
}

/// At most this many windows in one request.
pub const MAX_WINDOWS: usize = 50;

/// Checks the form of the windows a client shares (what the OpenAPI document states): 1 to
/// [`MAX_WINDOWS`].
pub fn check_window_count(windows: &[TimeWindow]) -> Result<(), ParseError> {
    if windows.is_empty() || windows.len() > MAX_WINDOWS {
        return Err(ParseError::new(format!("share 1 to {MAX_WINDOWS} windows")));
    }
    Ok(())
}

/// Checks the meaning of the windows a client shares: each ends after it starts and after
/// `now` (`422 invalid_time_range`).
pub fn check_windows(windows: &[TimeWindow], now: DateTime<Utc>) -> Result<(), Refusal> {
    for window in windows {
        let (from, to) = (window.starts_at, window.ends_at);
        if to <= from {
            return Err(Refusal::new(
                RefusalCode::InvalidTimeRange,
                format!("the window {from}–{to} ends before it starts"),
            ));
        }
        if to <= now {
            return Err(Refusal::new(
                RefusalCode::InvalidTimeRange,
                format!("the window {from}–{to} is over"),
            ));
        }
    }
    Ok(())
}

/// The real instant of a wall-clock time in `zone`: the earlier one when the clock goes back,
/// the first instant after the gap when it springs forward.
fn instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = date.and_time(time);
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(at) | chrono::LocalResult::Ambiguous(at, _) => {
            Some(at.to_utc())
        }
        chrono::LocalResult::None => {
            // Inside a spring-forward gap: the first wall-clock minute after it.
            (1..=180)
                .find_map(|minutes| {
                    zone.from_local_datetime(&(local + TimeDelta::minutes(minutes))).earliest()
                })
                .map(|at| at.to_utc())
        }
    }
}

/// A half-open range of real time, `[start, end)`, such as a session that holds its slot.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// What a slot search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotQuery {
    /// Slots start at or after.
    pub from: DateTime<Utc>,
    /// Slots start before.
    pub to: DateTime<Utc>,
    /// The session's length.
    pub duration: TimeDelta,
    /// The step between candidate starts (aligned to the interval's start).
    pub step: TimeDelta,
    /// Nothing starts before this (now + the booking notice).
    pub earliest: DateTime<Utc>,
}

/// The start times inside `availability` (in `zone`) where a session of `query.duration` fits
/// without touching any `busy` range (`[start, end)`, sorted by start). Sorted, without repeats.
pub fn slots(
    availability: &Availability,
    zone: Tz,
    busy: &[Span],
    query: &SlotQuery,
) -> Vec<DateTime<Utc>> {
    let mut found = Vec::new();
    let (Some(first), Some(last)) = (
        query.from.with_timezone(&zone).date_naive().checked_sub_days(Days::new(1)),
        query.to.with_timezone(&zone).date_naive().checked_add_days(Days::new(1)),
    ) else {
        return found;
    };
    let step = query.step.max(TimeDelta::minutes(1));
    let mut date = first;
    while date <= last {
        for hours in availability.hours_on(date) {
            let (Some(open), Some(close)) =
                (instant(zone, date, hours.start.time()), instant(zone, date, hours.end.time()))
            else {
                continue;
            };
            let mut start = open;
            while start + query.duration <= close && start < query.to {
                let end = start + query.duration;
                let fits = start >= query.from && start >= query.earliest;
                // `busy` is sorted by start: only ranges starting before `end` can overlap.
                let clashes = busy
                    .iter()
                    .take_while(|(b_start, _)| *b_start < end)
                    .any(|(b_start, b_end)| *b_start < end && start < *b_end);
                if fits && !clashes {
                    found.push(start);
                }
                start += step;
            }
        }
        date = match date.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays(start: &str, end: &str) -> Availability {
        let hours = Hours { start: start.parse().unwrap(), end: end.parse().unwrap() };
        let days = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ];
        Availability {
            weekly: days
                .iter()
                .map(|day| WeeklyHours { day: *day, start: hours.start, end: hours.end })
                .collect(),
            exceptions: Vec::new(),
        }
    }

    #[test]
    fn too_many_entries_duplicate_dates_and_overlapping_hours_are_refused() {
        let hours = |start: &str, end: &str| Hours {
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        };
        let on = |date: &str, list: Vec<Hours>| Exception {
            date: date.parse().unwrap(),
            off: false,
            hours: list,
        };
        let mut good = weekdays("09:00", "12:00");
        let noon = hours("12:00", "13:00");
        good.weekly.push(WeeklyHours { day: Weekday::Mon, start: noon.start, end: noon.end });
        good.exceptions =
            vec![on("2026-12-24", vec![hours("08:00", "10:00")]), on("2026-12-25", vec![])];
        assert_eq!((good.check(), good.check_meaning()), (Ok(()), Ok(())));

        let identical = Availability {
            weekly: Vec::new(),
            exceptions: vec![on("2026-12-24", vec![]); MAX_EXCEPTIONS + 1],
        };
        assert!(identical.check().is_err());
        let crowded = Availability {
            weekly: Vec::new(),
            exceptions: vec![on(
                "2026-12-24",
                vec![hours("09:00", "10:00"); MAX_EXCEPTION_HOURS + 1],
            )],
        };
        assert!(crowded.check().is_err());
        let mut weekly = weekdays("09:00", "10:00");
        weekly.weekly = weekly.weekly.iter().cycle().take(MAX_WEEKLY_HOURS + 1).cloned().collect();
        assert!(weekly.check().is_err());

        let twice = Availability {
            weekly: Vec::new(),
            exceptions: vec![on("2026-12-24", vec![]), on("2026-12-24", vec![])],
        };
        let mut overlapping_week = weekdays("09:00", "12:00");
        let late_morning = hours("11:00", "13:00");
        overlapping_week.weekly.push(WeeklyHours {
            day: Weekday::Wed,
            start: late_morning.start,
            end: late_morning.end,
        });
        let overlapping_day = Availability {
            weekly: Vec::new(),
            exceptions: vec![on(
                "2026-12-24",
                vec![hours("09:00", "12:00"), hours("09:00", "12:00")],
            )],
        };
        for bad in [twice, overlapping_week, overlapping_day] {
            assert_eq!(bad.check(), Ok(()));
            let refused = bad.check_meaning().unwrap_err();
            assert_eq!(refused.code, RefusalCode::OverlappingAvailability, "{refused}");
        }
        let backwards = weekdays("12:00", "09:00");
        assert_eq!(backwards.check(), Ok(()));
        assert_eq!(backwards.check_meaning().unwrap_err().code, RefusalCode::InvalidTimeRange);
    }

    #[test]
    fn only_two_digit_hours_and_minutes_with_optional_seconds_are_times() {
        for good in ["00:00", "09:30", "23:59", "12:00:59", "12:00:00.5", "12:00:00.123456789"] {
            assert!(WallClock::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "9:00",
            "24:00",
            "12:60",
            "12:00:60",
            "12:00.5",
            "12:00:00.",
            " 12:00",
            "12:00 ",
            "12:00:00.1234567890",
            "12:00:00:00",
            "1a:00",
            "+1:00",
            "١٢:٠٠",
        ] {
            assert!(WallClock::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// The pattern the OpenAPI document states is the form `parse` accepts.
        #[test]
        fn the_stated_pattern_is_the_enforced_form(
            text in "[0-9:. a]{0,20}|[0-2][0-9]:[0-6][0-9](:[0-6][0-9](\\.[0-9]{0,10})?)?"
        ) {
            let stated = regex::Regex::new(WallClock::PATTERN).unwrap();
            proptest::prop_assert_eq!(stated.is_match(&text), WallClock::parse(&text).is_ok(), "{:?}", text);
        }
    }

    fn day_query(zone: Tz, date: &str) -> SlotQuery {
        let date: NaiveDate = date.parse().unwrap();
        let from = zone
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .to_utc();
        SlotQuery {
            from,
            to: from + TimeDelta::hours(30),
            duration: TimeDelta::minutes(60),
            step: TimeDelta::minutes(60),
            earliest: DateTime::<Utc>::MIN_UTC,
        }
    }

    fn local_hours(found: &[DateTime<Utc>], zone: Tz, date: &str) -> Vec<String> {
        found
            .iter()
            .map(|at| at.with_timezone(&zone))
            .filter(|at| at.date_naive().to_string() == date)
            .map(|at| at.format("%H:%M %Z").to_string())
            .collect()
    }

    #[test]
    fn new_york_spring_forward_has_no_missing_or_invented_hour() {
        let zone = chrono_tz::America::New_York;
        let found = slots(&weekdays("00:00", "06:00"), zone, &[], &day_query(zone, "2026-03-08"));
        // 00:00–06:00 that day is five real hours: 02:00 does not exist.
        assert_eq!(
            local_hours(&found, zone, "2026-03-08"),
            ["00:00 EST", "01:00 EST", "03:00 EDT", "04:00 EDT", "05:00 EDT"]
        );
    }

    #[test]
    fn new_york_fall_back_has_no_doubled_instant() {
        let zone = chrono_tz::America::New_York;
        let found = slots(&weekdays("00:00", "06:00"), zone, &[], &day_query(zone, "2026-11-01"));
        // Seven real hours; 01:00 comes twice on the wall clock, as two different instants.
        assert_eq!(
            local_hours(&found, zone, "2026-11-01"),
            [
                "00:00 EDT",
                "01:00 EDT",
                "01:00 EST",
                "02:00 EST",
                "03:00 EST",
                "04:00 EST",
                "05:00 EST"
            ]
        );
        let mut unique = found.clone();
        unique.dedup();
        assert_eq!(unique, found);
    }

    #[test]
    fn london_changes_at_one_in_the_morning() {
        let zone = chrono_tz::Europe::London;
        let spring = slots(&weekdays("00:00", "04:00"), zone, &[], &day_query(zone, "2026-03-29"));
        assert_eq!(
            local_hours(&spring, zone, "2026-03-29"),
            ["00:00 GMT", "02:00 BST", "03:00 BST"]
        );
        let autumn = slots(&weekdays("00:00", "04:00"), zone, &[], &day_query(zone, "2026-10-25"));
        assert_eq!(
            local_hours(&autumn, zone, "2026-10-25"),
            ["00:00 BST", "01:00 BST", "01:00 GMT", "02:00 GMT", "03:00 GMT"]
        );
    }

    #[test]
    fn busy_ranges_exceptions_and_notice_remove_slots() {
        let zone = chrono_tz::UTC;
        let mut availability = weekdays("09:00", "12:00");
        let date: NaiveDate = "2026-06-01".parse().unwrap();
        availability.exceptions.push(Exception {
            date: date.succ_opt().unwrap(),
            off: true,
            hours: Vec::new(),
        });
        availability.exceptions.push(Exception {
            date,
            off: false,
            hours: vec![Hours { start: "14:00".parse().unwrap(), end: "15:00".parse().unwrap() }],
        });
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 6, 1, h, m, 0).unwrap();
        let mut query = day_query(zone, "2026-06-01");
        query.to = at(23, 0) + TimeDelta::days(1);
        query.duration = TimeDelta::minutes(50);
        query.step = TimeDelta::minutes(30);
        query.earliest = at(9, 30);
        let busy = [(at(10, 0), at(10, 50))];
        let found = slots(&availability, zone, &busy, &query);
        // 09:00 is before the notice; 09:30 runs into the 10:00 session; 10:00, 10:30 clash; the
        // next day is off; the extra hour gives 14:00.
        assert_eq!(found, [at(11, 0), at(14, 0)]);
    }
}
