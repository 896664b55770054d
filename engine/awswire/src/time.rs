//! Timestamps on the wire and in values.
//!
//! Guarantees: parameters may give a timestamp as an RFC 3339 / ISO 8601 string (any UTC
//! offset, optional fraction) or as a number of seconds since the epoch (fractions kept);
//! results always carry timestamps as RFC 3339 strings in UTC (`2014-04-29T18:30:38Z`, with a
//! fraction only when the service sent one). The three wire formats are produced the way
//! botocore produces them: `iso8601` (`%Y-%m-%dT%H:%M:%SZ`, microseconds when non-zero),
//! `rfc822` (IMF-fixdate, whole seconds) and `unixTimestamp` (whole seconds, or milliseconds
//! as a fraction when non-zero). Parsing a wire timestamp accepts any of the three.

use std::time::SystemTime;

/// A point in time: seconds since the Unix epoch plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds within the second (0..1e9).
    pub nanos: u32,
}

/// Days since the epoch for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date for days since the epoch.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    /// From (possibly fractional) epoch seconds.
    pub fn from_epoch_f64(v: f64) -> Option<Timestamp> {
        if !v.is_finite() {
            return None;
        }
        let secs = v.floor();
        let nanos = ((v - secs) * 1e9).round() as u32;
        let (secs, nanos) = if nanos >= 1_000_000_000 {
            (secs as i64 + 1, 0)
        } else {
            (secs as i64, nanos)
        };
        Some(Timestamp { secs, nanos })
    }

    /// Parses any of the wire formats (epoch number, ISO 8601, RFC 822 / HTTP date).
    pub fn parse(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| {
            b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e' || b == b'E' || b == b'+'
        }) && s.bytes().any(|b| b.is_ascii_digit())
            && !s[1..].contains('-')
            && let Ok(v) = s.parse::<f64>()
        {
            return Timestamp::from_epoch_f64(v);
        }
        Timestamp::parse_iso8601(s).or_else(|| Timestamp::parse_http_date(s))
    }

    /// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM|-HH:MM]` (a bare date is midnight UTC).
    pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let t = s.get(r)?;
            if t.bytes().all(|c| c.is_ascii_digit()) {
                t.parse().ok()
            } else {
                None
            }
        };
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return None;
        }
        let mut secs = days_from_civil(i64::from(y), mo, d) * 86_400;
        let mut nanos = 0u32;
        if b.len() == 10 {
            return Some(Timestamp { secs, nanos });
        }
        if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b.len() < 19 {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs += i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
        let mut i = 19;
        if i < b.len() && b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let frac = &s[start..i];
            if frac.is_empty() {
                return None;
            }
            let mut digits: String = frac.chars().take(9).collect();
            while digits.len() < 9 {
                digits.push('0');
            }
            nanos = digits.parse().ok()?;
        }
        let rest = &s[i..];
        match rest {
            "" | "Z" | "z" => {}
            _ => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let off = rest[1..].replace(':', "");
                if off.len() != 4 || !off.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let oh: i64 = off[0..2].parse().ok()?;
                let om: i64 = off[2..4].parse().ok()?;
                secs -= sign * (oh * 3600 + om * 60);
            }
        }
        Some(Timestamp { secs, nanos })
    }

    /// Parses an RFC 822 / RFC 7231 HTTP date (`Tue, 29 Apr 2014 18:30:38 GMT`).
    pub fn parse_http_date(s: &str) -> Option<Timestamp> {
        let t = httpdate::parse_http_date(s).ok()?;
        let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        Some(Timestamp {
            secs: d.as_secs() as i64,
            nanos: 0,
        })
    }

    fn parts(&self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, sod / 3600, sod / 60 % 60, sod % 60)
    }

    /// RFC 3339 in UTC, the form results carry: fraction only when non-zero, trailing zeros
    /// trimmed (`2014-04-29T18:30:38Z`, `2000-01-02T20:34:56.123Z`).
    pub fn to_rfc3339(&self) -> String {
        let (y, mo, d, h, mi, s) = self.parts();
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }

    /// botocore's `iso8601` wire format: `%Y-%m-%dT%H:%M:%SZ`, or `.%fZ` (microseconds)
    /// when the microseconds are non-zero.
    pub fn to_iso8601(&self) -> String {
        let (y, mo, d, h, mi, s) = self.parts();
        let micros = self.nanos / 1000;
        if micros != 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        }
    }

    /// The `rfc822` wire format (IMF-fixdate, whole seconds): `Tue, 29 Apr 2014 18:30:38 GMT`.
    pub fn to_rfc822(&self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (y, mo, d, h, mi, s) = self.parts();
        // 1970-01-01 was a Thursday.
        let wd = DAYS[self.secs.div_euclid(86_400).rem_euclid(7) as usize];
        format!(
            "{wd}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
            MONTHS[(mo - 1) as usize]
        )
    }

    /// The `unixTimestamp` wire format as a JSON number: whole seconds, or seconds with a
    /// millisecond fraction when the milliseconds are non-zero.
    pub fn to_epoch_value(&self) -> serde_json::Value {
        let millis = self.nanos / 1_000_000;
        if millis == 0 {
            serde_json::Value::from(self.secs)
        } else {
            serde_json::Value::from(self.secs as f64 + f64::from(millis) / 1000.0)
        }
    }

    /// Formats for the wire in the named format (`iso8601`, `rfc822`, `unixTimestamp`).
    pub fn to_format(&self, format: &str) -> String {
        match format.to_ascii_lowercase().as_str() {
            "rfc822" => self.to_rfc822(),
            "unixtimestamp" => self.to_epoch_value().to_string(),
            _ => self.to_iso8601(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = Timestamp::parse("2014-04-29T18:30:38Z").unwrap();
        assert_eq!(t.secs, 1_398_796_238);
        assert_eq!(t.to_rfc822(), "Tue, 29 Apr 2014 18:30:38 GMT");
        assert_eq!(Timestamp::parse("Tue, 29 Apr 2014 18:30:38 GMT"), Some(t));
        assert_eq!(Timestamp::parse("1398796238"), Some(t));
        let f = Timestamp::parse("2000-01-02T20:34:56.123Z").unwrap();
        assert_eq!(f.to_rfc3339(), "2000-01-02T20:34:56.123Z");
        assert_eq!(f.to_iso8601(), "2000-01-02T20:34:56.123000Z");
        assert_eq!(f.to_epoch_value().to_string(), "946845296.123");
        let o = Timestamp::parse("2019-12-16T22:48:18-01:00").unwrap();
        assert_eq!(o.to_rfc3339(), "2019-12-16T23:48:18Z");
        assert_eq!(
            Timestamp { secs: -1, nanos: 0 }.to_rfc3339(),
            "1969-12-31T23:59:59Z"
        );
    }
}
