//! Measuring helpers shared by the benches: percentiles and /proc/self readings.

use std::path::Path;
use std::time::Duration;

/// The `p` quantile (0..=1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A `key:   N kB` line of a /proc/self file, in KiB (0 where there is no such file or line).
pub fn proc_kib(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(Path::new("/proc/self").join(file))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
