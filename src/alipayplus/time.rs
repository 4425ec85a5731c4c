//! `Request-Time` / `Response-Time` values and ISO 8601 date-times
//! (`alipayplus-mpp.md` §4.6, §6.2).
//!
//! Emitted times always carry a numeric offset with a colon (`+00:00`, never
//! `Z`). Offsets beyond ±23:59 are clamped to it, and instants are clamped to
//! years 0000–9999 so the output always has the documented shape.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// The largest offset we format, in minutes (±23:59).
const MAX_OFFSET_MINUTES: i32 = 23 * 60 + 59;
/// 0000-01-01T00:00:00.000 as unix milliseconds.
const MIN_LOCAL_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999 as unix milliseconds.
const MAX_LOCAL_MS: i64 = 253_402_300_799_999;

/// `YYYY-MM-DDTHH:MM:SS.sss±HH:MM` for `unix_ms` seen at `offset_minutes`
/// east of UTC, e.g. `2019-04-04T12:08:56.253+05:30` (`+00:00` for 0).
pub fn format_request_time(unix_ms: i64, offset_minutes: i32) -> String {
    let (local, offset) = local_time(unix_ms, offset_minutes);
    format!(
        "{}.{:03}{}",
        date_time_part(&local),
        local.nanosecond() / 1_000_000,
        offset_part(offset)
    )
}

/// `YYYY-MM-DDTHH:MM:SS±HH:MM` (no fraction) for a payload Datetime field,
/// e.g. `2019-11-27T00:00:00+08:00`.
pub fn format_datetime(unix_secs: i64, offset_minutes: i32) -> String {
    let (local, offset) = local_time(unix_secs.saturating_mul(1000), offset_minutes);
    format!("{}{}", date_time_part(&local), offset_part(offset))
}

/// Parses a received `Request-Time` / `Response-Time` into unix milliseconds.
///
/// Accepts ISO 8601 `YYYY-MM-DDTHH:MM:SS` with an optional fraction of any
/// number of digits (truncated to milliseconds) and an offset `±HH:MM`,
/// `±HHMM` or `Z`, or an all-digit epoch-milliseconds value (§4.6).
pub fn parse_header_time(s: &str) -> Option<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_iso(s, true)
}

/// Whether `s` is a payload Datetime: `YYYY-MM-DDTHH:MM:SS`, an optional
/// fraction of any number of digits, then `±HH:MM` or `Z`, naming a real
/// calendar date and time.
pub fn is_iso8601_datetime(s: &str) -> bool {
    parse_iso(s, false).is_some()
}

/// The local wall-clock time and the (clamped) offset actually used.
fn local_time(unix_ms: i64, offset_minutes: i32) -> (NaiveDateTime, i32) {
    let offset = offset_minutes.clamp(-MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES);
    let local_ms = unix_ms
        .saturating_add(i64::from(offset) * 60_000)
        .clamp(MIN_LOCAL_MS, MAX_LOCAL_MS);
    // Always in chrono's range after the clamp; the default (epoch) is unreachable.
    let local = DateTime::from_timestamp_millis(local_ms).unwrap_or_default();
    (local.naive_utc(), offset)
}

fn date_time_part(t: &NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn offset_part(offset_minutes: i32) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
}

/// A cursor over ASCII bytes for the fixed-width ISO 8601 grammar.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// Exactly `n` decimal digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }
}

/// Unix milliseconds of an ISO 8601 date-time with offset; `compact_offset`
/// also allows `±HHMM`.
fn parse_iso(s: &str, compact_offset: bool) -> Option<i64> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4)?;
    c.eat(b'-')?;
    let month = c.digits(2)?;
    c.eat(b'-')?;
    let day = c.digits(2)?;
    c.eat(b'T')?;
    let hour = c.digits(2)?;
    c.eat(b':')?;
    let minute = c.digits(2)?;
    c.eat(b':')?;
    let second = c.digits(2)?;

    let mut nanos = 0u32;
    if c.eat(b'.').is_some() {
        let mut count = 0usize;
        while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
            // Digits past nanoseconds are accepted and ignored.
            if count < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
            count += 1;
            c.pos += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }

    let offset_secs: i64 = match c.peek()? {
        b'Z' => {
            c.pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            c.pos += 1;
            let oh = c.digits(2)?;
            if c.eat(b':').is_none() && !compact_offset {
                return None;
            }
            let om = c.digits(2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    if c.pos != c.bytes.len() {
        return None;
    }

    // `year` has four digits, so the conversion cannot fail.
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    // from_hms_nano_opt rejects second 60; nanos < 1e9 so no leap-second form.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local_ms = NaiveDateTime::new(date, time).and_utc().timestamp_millis();
    Some(local_ms - offset_secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_formatting() {
        // 2019-04-04T06:38:56.253Z
        let ms = 1_554_359_936_253;
        assert_eq!(format_request_time(ms, 330), "2019-04-04T12:08:56.253+05:30");
        assert_eq!(format_request_time(ms, 0), "2019-04-04T06:38:56.253+00:00");
        assert_eq!(format_request_time(ms, -90), "2019-04-04T05:08:56.253-01:30");
        assert_eq!(format_request_time(0, 0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(format_request_time(-1, 0), "1969-12-31T23:59:59.999+00:00");
        // Out-of-range inputs are clamped, never panic.
        assert_eq!(format_request_time(0, 10_000), "1970-01-01T23:59:00.000+23:59");
        assert_eq!(format_request_time(i64::MAX, 0), "9999-12-31T23:59:59.999+00:00");
        assert_eq!(format_request_time(i64::MIN, -60), "0000-01-01T00:00:00.000-01:00");
    }

    #[test]
    fn datetime_formatting() {
        // 2019-11-26T16:00:00Z
        assert_eq!(format_datetime(1_574_784_000, 480), "2019-11-27T00:00:00+08:00");
        assert_eq!(format_datetime(1_574_784_000, 0), "2019-11-26T16:00:00+00:00");
        assert!(is_iso8601_datetime(&format_datetime(i64::MAX, 0)));
        assert!(is_iso8601_datetime(&format_datetime(i64::MIN, 0)));
    }

    #[test]
    fn formatted_times_parse_back() {
        for (ms, off) in [(1_554_359_936_253, 330), (0, 0), (-1, -600), (1_700_000_000_001, 59)] {
            assert_eq!(parse_header_time(&format_request_time(ms, off)), Some(ms));
        }
    }

    #[test]
    fn header_time_accepts_documented_forms() {
        let base = 1_554_359_936_000; // 2019-04-04T06:38:56Z
        let cases = [
            ("2019-04-04T12:08:56.253+05:30", Some(base + 253)),
            ("2019-04-04T12:08:56+05:30", Some(base)),
            ("2019-04-04T12:08:56.2+05:30", Some(base + 200)),
            ("2019-04-04T12:08:56.253999999999+05:30", Some(base + 253)),
            ("2019-04-04T12:08:56.253+0530", Some(base + 253)),
            ("2019-04-04T06:38:56Z", Some(base)),
            ("2019-04-04T06:38:56.5Z", Some(base + 500)),
            ("2019-04-04T05:38:56-01:00", Some(base)),
            ("1685599933871", Some(1_685_599_933_871)),
            ("0", Some(0)),
            ("", None),
            ("99999999999999999999999", None),
            ("-1685599933871", None),
            ("2019-04-04 06:38:56Z", None),
            ("2019-04-04T06:38:56", None),
            ("2019-04-04T06:38:56.Z", None),
            ("2019-04-04T06:38:56+05", None),
            ("2019-04-04T06:38:56+05:3", None),
            ("2019-04-04T06:38:56+24:00", None),
            ("2019-04-04T06:38:56+05:60", None),
            ("2019-04-04T06:38:56Zx", None),
            ("2019-02-29T00:00:00Z", None),
            ("2019-04-04T24:00:00Z", None),
            ("2019-04-04T06:38:60Z", None),
            ("2019-4-04T06:38:56Z", None),
            ("２019-04-04T06:38:56Z", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_header_time(s), want, "{s}");
        }
    }

    #[test]
    fn payload_datetime_forms() {
        for ok in [
            "2019-11-27T00:00:00+08:00",
            "2022-02-17T00:00:00.00+08:00",
            "2019-06-12T14:07:05Z",
            "2020-02-29T23:59:59.123456789123-12:00",
            "2019-06-12T14:07:05-00:00",
        ] {
            assert!(is_iso8601_datetime(ok), "{ok}");
        }
        for bad in [
            "",
            "2019-11-27",
            "2019-11-27T00:00:00",
            "2019-11-27T00:00:00+0800",
            "2019-11-27 00:00:00+08:00",
            "2019-11-27t00:00:00z",
            "2019-13-01T00:00:00Z",
            "2019-11-31T00:00:00Z",
            "2019-02-29T00:00:00Z",
            "2019-11-27T25:00:00Z",
            "2019-11-27T00:60:00Z",
            "2019-11-27T00:00:00.+08:00",
            "2019-11-27T00:00:00+08:00 ",
            " 2019-11-27T00:00:00+08:00",
            "1574784000000",
            "19-11-27T00:00:00Z",
        ] {
            assert!(!is_iso8601_datetime(bad), "{bad}");
        }
    }
}
