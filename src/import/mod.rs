//! Readers of other systems' user stores, for `hookauth import`: each turns its source into a
//! [`crate::flows::ImportSource`], and `flows::import_users` does the rest (validation, hashes,
//! batches), the same service whatever the source.

pub mod fullauth;
pub mod jsonl;

/// Why a source could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the source database: {0}")]
    Connect(sqlx::Error),
    #[error("not a fastapi-fullauth database: {0}")]
    NotFullauth(String),
    #[error("reading the source failed: {0}")]
    Read(#[from] sqlx::Error),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC, as both readers select it) to unix milliseconds.
pub(crate) fn parse_utc_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    // Drop a zone suffix: both readers select UTC already.
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let millis: i64 = format!("{:0<3}", &fraction[..fraction.len().min(3)])
        .parse()
        .ok()?;
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_as_both_databases_print_them() {
        assert_eq!(parse_utc_datetime("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_utc_datetime("2026-12-07 05:52:35.719302"),
            Some(1_796_622_755_719)
        );
        assert_eq!(
            parse_utc_datetime("2026-12-07T05:52:35Z"),
            Some(1_796_622_755_000)
        );
        assert_eq!(
            parse_utc_datetime("2000-02-29 12:00:00.5+00"),
            Some(951_825_600_500)
        );
        assert_eq!(parse_utc_datetime("yesterday"), None);
        assert_eq!(parse_utc_datetime("2026-13-01 00:00:00"), None);
    }
}
