//! Calendar invites (RFC 5545 `.ics`): one `UID` per session, `SEQUENCE` growing with each
//! change, `METHOD:REQUEST` or `METHOD:CANCEL`, and times in the recipient's IANA zone with a
//! `VTIMEZONE` describing that zone's offsets in the event's year (so the local time is right on
//! either side of a daylight-saving change).

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use livesessions_domain::SessionId;
use livesessions_workflows::activities::{Invite, InviteMethod};
use std::fmt::Write;

/// One event of an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The session (the invite's `UID`).
    pub session_id: SessionId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// The zone the times are written in.
    pub zone: Tz,
    /// `SUMMARY`.
    pub summary: &'a str,
    /// The organizer's address.
    pub organizer: &'a str,
    /// The attendee's name and address.
    pub attendee: (&'a str, &'a str),
    /// When the invite is made (`DTSTAMP`).
    pub stamped_at: DateTime<Utc>,
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n")
}

/// Folds a content line at 75 octets (RFC 5545, 3.1), never inside a character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for ch in line.chars() {
        let len = ch.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += len;
    }
    out.push_str("\r\n");
    out
}

fn local(at: DateTime<Utc>, zone: Tz) -> NaiveDateTime {
    at.with_timezone(&zone).naive_local()
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.abs();
    format!("{sign}{:02}{:02}", seconds / 3600, (seconds % 3600) / 60)
}

/// The instants of `zone`'s offset changes in `year`, found by scanning days and narrowing to
/// the second.
fn transitions(zone: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |at: DateTime<Utc>| {
        zone.offset_from_utc_datetime(&at.naive_utc()).base_utc_offset()
            + zone.offset_from_utc_datetime(&at.naive_utc()).dst_offset()
    };
    let Some(start) = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut day = start;
    while day.year() == year {
        let next = day + TimeDelta::days(1);
        if offset(day) != offset(next) {
            let (mut before, mut after) = (day, next);
            while after - before > TimeDelta::seconds(1) {
                let middle = before + (after - before) / 2;
                if offset(middle) == offset(before) { before = middle } else { after = middle }
            }
            found.push(after);
        }
        day = next;
    }
    found
}

/// The `VTIMEZONE` of `zone` for `year`: one observance per offset change, or one fixed
/// observance for a zone without changes.
fn vtimezone(zone: Tz, year: i32) -> String {
    let mut out = String::new();
    out.push_str(
        &fold(&format!("BEGIN:VTIMEZONE\r\nTZID:{}", zone.name())).replace("\r\n\r\n", "\r\n"),
    );
    let observance = |at: DateTime<Utc>| {
        let before = zone.offset_from_utc_datetime(&(at - TimeDelta::seconds(1)).naive_utc());
        let after = zone.offset_from_utc_datetime(&at.naive_utc());
        let kind = if after.dst_offset().is_zero() { "STANDARD" } else { "DAYLIGHT" };
        let from = (before.base_utc_offset() + before.dst_offset()).num_seconds() as i32;
        let to = (after.base_utc_offset() + after.dst_offset()).num_seconds() as i32;
        let start = (at.naive_utc() + TimeDelta::seconds(i64::from(from))).format("%Y%m%dT%H%M%S");
        let name = after.abbreviation().unwrap_or("").to_string();
        format!(
            "BEGIN:{kind}\r\nDTSTART:{start}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\nTZNAME:{name}\r\nEND:{kind}\r\n",
            offset_text(from),
            offset_text(to)
        )
    };
    let changes = transitions(zone, year);
    if changes.is_empty() {
        let jan = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single().unwrap_or_default();
        let fixed = zone.offset_from_utc_datetime(&jan.naive_utc());
        let seconds = (fixed.base_utc_offset() + fixed.dst_offset()).num_seconds() as i32;
        let name = fixed.abbreviation().unwrap_or("").to_string();
        let _ = write!(
            out,
            "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:{0}\r\nTZOFFSETTO:{0}\r\nTZNAME:{name}\r\nEND:STANDARD\r\n",
            offset_text(seconds)
        );
    }
    for change in changes {
        out.push_str(&observance(change));
    }
    out.push_str("END:VTIMEZONE\r\n");
    out
}

/// The invite as `.ics` text.
pub fn invite(invite: &Invite, event: &Event<'_>) -> String {
    let (method, status) = match invite.method {
        InviteMethod::Request => ("REQUEST", "CONFIRMED"),
        InviteMethod::Cancel => ("CANCEL", "CANCELLED"),
    };
    let zone = event.zone.name();
    let time = |at: DateTime<Utc>| local(at, event.zone).format("%Y%m%dT%H%M%S").to_string();
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "PRODID:-//livesessions//live sessions//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
    ] {
        out.push_str(&fold(line));
    }
    out.push_str(&fold(&format!("METHOD:{method}")));
    out.push_str(&vtimezone(event.zone, local(event.starts_at, event.zone).year()));
    let lines = [
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}@livesessions", event.session_id),
        format!("SEQUENCE:{}", invite.sequence),
        format!("DTSTAMP:{}", event.stamped_at.format("%Y%m%dT%H%M%SZ")),
        format!("DTSTART;TZID={zone}:{}", time(event.starts_at)),
        format!("DTEND;TZID={zone}:{}", time(event.ends_at)),
        format!("SUMMARY:{}", escape(event.summary)),
        format!("STATUS:{status}"),
        format!("ORGANIZER;CN=livesessions:mailto:{}", event.organizer),
        format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{}",
            escape(event.attendee.0),
            event.attendee.1
        ),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ];
    for line in lines {
        out.push_str(&fold(&line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(starts_at: &str) -> String {
        let starts_at: DateTime<Utc> = starts_at.parse().unwrap();
        let event = Event {
            session_id: SessionId::random(),
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(45),
            zone: chrono_tz::America::New_York,
            summary: "Live video session",
            organizer: "no-reply@example.com",
            attendee: ("A, Client", "client@example.com"),
            stamped_at: starts_at,
        };
        invite(&Invite { method: InviteMethod::Request, sequence: 2 }, &event)
    }

    #[test]
    fn times_are_local_on_both_sides_of_the_march_change() {
        // 2026-03-08 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let before = event("2026-03-07T15:00:00Z");
        let after = event("2026-03-08T15:00:00Z");
        assert!(before.contains("DTSTART;TZID=America/New_York:20260307T100000\r\n"), "{before}");
        assert!(after.contains("DTSTART;TZID=America/New_York:20260308T110000\r\n"), "{after}");
        assert!(after.contains("BEGIN:DAYLIGHT\r\nDTSTART:20260308T020000\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT"), "{after}");
        assert!(after.contains("BEGIN:STANDARD\r\nDTSTART:20261101T020000\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500"), "{after}");
        assert!(after.contains("SEQUENCE:2\r\n") && after.contains("METHOD:REQUEST\r\n"));
        assert!(after.contains("CN=A\\, Client"), "names are escaped");
        assert!(after.lines().all(|l| l.len() <= 76), "lines are folded");
    }
}
