//! Exact percentiles over all samples (no histogram buckets, no sampling).
//!
//! A percentile is the *nearest-rank* value of the sorted samples: for `n` samples
//! and `p` in `(0, 100]`, the sample at 1-based rank `ceil(p / 100 * n)`. It is
//! always one of the measured values (never an interpolation), `p100` is the maximum,
//! and `p50` of an even count is the lower of the two middle samples.

use serde::Serialize;

/// The nearest-rank `p`-th percentile of `sorted` (ascending), or `None` when empty.
/// `p` is clamped to `[0, 100]`; `p = 0` gives the minimum.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // p * n first, then / 100: exact for integral p (0.95 * 100 is not 95 in f64).
    let rank = (p.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Summary of one kind of duration sample, in seconds. Every field is `None` (JSON
/// `null`) when there were no samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Distribution {
    pub count: usize,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Distribution {
    /// Summarises `samples` (any order; sorted here).
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let mean = (n > 0).then(|| samples.iter().sum::<f64>() / n as f64);
        Self {
            count: n,
            mean,
            min: samples.first().copied(),
            p50: percentile(&samples, 50.0),
            p95: percentile(&samples, 95.0),
            p99: percentile(&samples, 99.0),
            max: samples.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 0.5), Some(1.0));
        assert_eq!(percentile(&v, 99.5), Some(100.0));
    }

    #[test]
    fn small_counts_take_a_measured_value() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        // Even count: the lower middle sample.
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        // ceil(0.95 * 4) = 4: the maximum.
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 95.0), Some(4.0));
        // ceil(0.95 * 20) = 19, not 20.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        // ceil(0.99 * 200) = 198.
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(198.0));
    }

    #[test]
    fn distribution_sorts_and_summarises() {
        let d = Distribution::of(vec![0.3, 0.1, 0.4, 0.2]);
        assert_eq!(d.count, 4);
        assert_eq!(d.min, Some(0.1));
        assert_eq!(d.max, Some(0.4));
        assert_eq!(d.p50, Some(0.2));
        assert_eq!(d.p95, Some(0.4));
        assert!((d.mean.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(Distribution::of(Vec::new()), Distribution::default());
    }
}
