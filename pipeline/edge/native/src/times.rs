//! Instants as Python's `datetime` holds them, in microseconds since the Unix epoch (UTC):
//! the range `datetime` allows (years 1-9999), the ISO-8601 forms SDKs send parsed natively,
//! and the two text forms the reference writes.

/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999, in microseconds since 1970: what
/// `datetime` holds; an arithmetic result outside is Python's `OverflowError`.
pub const MIN_US: i64 = -62_135_596_800_000_000;
pub const MAX_US: i64 = 253_402_300_799_999_999;
pub const US_PER_DAY: i64 = 86_400_000_000;

pub fn in_range(us: i64) -> bool {
    (MIN_US..=MAX_US).contains(&us)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", days_from_civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micro: i64,
}

fn split(us: i64) -> Fields {
    let days = us.div_euclid(US_PER_DAY);
    let rest = us.rem_euclid(US_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = rest / 1_000_000;
    Fields {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        micro: rest % 1_000_000,
    }
}

/// `t.isoformat()` of a UTC datetime: `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, microseconds
/// only when not zero (what `TrackedEvent.to_json_dict` writes).
pub fn isoformat(us: i64) -> String {
    let f = split(us);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        f.year, f.month, f.day, f.hour, f.minute, f.second
    );
    if f.micro != 0 {
        s.push_str(&format!(".{:06}", f.micro));
    }
    s.push_str("+00:00");
    s
}

/// `tracking._iso(t)`: `t.isoformat(timespec="milliseconds")` with `Z` for `+00:00`
/// (milliseconds truncated, as `isoformat` does).
pub fn iso_ms_z(us: i64) -> String {
    let f = split(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        f.year,
        f.month,
        f.day,
        f.hour,
        f.minute,
        f.second,
        f.micro / 1000
    )
}

fn num(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let digits = b.get(at..at + len)?;
    let mut n = 0i64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(n)
}

/// `datetime.fromisoformat(text)` made UTC the way `tracking._instant` does (naive = UTC,
/// then `astimezone(UTC)`), for the forms SDKs send:
///
/// `YYYY-MM-DD` then optionally `T` or a space and `HH:MM`, `HH:MM:SS` or
/// `HH:MM:SS.f…` (`.` or `,`, one or more digits, those past six ignored as Python 3.11
/// does), then optionally `Z` or `±HH:MM`.
///
/// `Some(microseconds since 1970)` when the text is of that form with every field in range
/// and the UTC instant is one `datetime` holds; None for everything else: the caller asks
/// Python itself (`fromisoformat` reads many more forms: basic format, week dates, any
/// separator, offsets with seconds, ...), so None claims nothing about validity.
pub fn parse_iso_common(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut local = days_from_civil(year, month, day) * US_PER_DAY;
    let mut i = 10;
    let mut offset_us = 0i64;
    if i < b.len() {
        if b[i] != b'T' && b[i] != b' ' {
            return None;
        }
        i += 1;
        let (hour, minute) = (num(b, i, 2)?, num(b, i + 3, 2)?);
        if b.get(i + 2) != Some(&b':') || hour > 23 || minute > 59 {
            return None;
        }
        i += 5;
        let mut second = 0;
        let mut micro = 0;
        if b.get(i) == Some(&b':') {
            second = num(b, i + 1, 2)?;
            if second > 59 {
                return None;
            }
            i += 3;
            if matches!(b.get(i), Some(b'.' | b',')) {
                i += 1;
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let count = i - start;
                if count == 0 {
                    return None;
                }
                let used = count.min(6);
                micro = num(b, start, used)? * 10i64.pow((6 - used) as u32);
            }
        }
        local += ((hour * 60 + minute) * 60 + second) * 1_000_000 + micro;
        match b.get(i) {
            None => {}
            Some(b'Z') if i + 1 == b.len() => {}
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(b, i + 1, 2)?, num(b, i + 4, 2)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                offset_us = (oh * 60 + om) * 60_000_000 * if sign == b'-' { -1 } else { 1 };
            }
            _ => return None,
        }
    }
    let utc = local - offset_us;
    // outside: Python raises OverflowError in astimezone; let Python say so
    in_range(utc).then_some(utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1, 1, 1) * US_PER_DAY, MIN_US);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(isoformat(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(isoformat(1_500_000), "1970-01-01T00:00:01.500000+00:00");
        assert_eq!(iso_ms_z(MAX_US), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso_ms_z(MIN_US), "0001-01-01T00:00:00.000Z");
        assert_eq!(parse_iso_common("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            parse_iso_common("1970-01-01T00:00:00.1234567Z"),
            Some(123_456)
        );
        assert_eq!(parse_iso_common("1970-01-01T00:00:00+0100"), None);
    }
}
