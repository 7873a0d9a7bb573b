//! Calendar dates of Unix times, in UTC: the one civil-date routine of the workspace.
//!
//! Uses nothing but `std`, because it is also compiled outside this crate: `dvdcli/build.rs`
//! (which cannot depend on the crate being built alongside it) and the test plugin in
//! `tests/testkit` include this file with `#[path]`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Year, month (1–12), day (1–31) of the proleptic Gregorian calendar, `days` after
/// 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a 400-year era
    // (146 097 days).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the epoch; 0 for a time before it.
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2006-01-02T15:04:05Z` (RFC 3339, as Docker prints `CreatedAt`).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = unix_secs(t);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Tue, 24 Nov 2026 22:37:22 UTC` (RFC 1123 with `UTC`, as Go dvdcli's `version` prints
/// `Formed:`).
pub fn rfc1123_utc(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} UTC",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn timestamps() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)), at(0));
    }

    #[test]
    fn rfc1123() {
        assert_eq!(rfc1123_utc(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc1123_utc(951_782_400), "Tue, 29 Feb 2000 00:00:00 UTC");
        assert_eq!(rfc1123_utc(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 UTC");
    }
}
