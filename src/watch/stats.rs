//! The anomaly test's arithmetic: a value against the same task's past values.
//!
//! A *robust* z-score: the centre is the median and the spread the median absolute deviation
//! (MAD), so one bad night in the past neither drags the centre nor widens the spread enough to
//! hide the next one, as a mean and standard deviation would. The MAD is scaled by 1.4826 so
//! that, on normally distributed data, it estimates the standard deviation: the score is then
//! Iglewicz and Hoaglin's *modified z-score*, `0.6745 (x - median) / MAD`, for which they
//! suggest flagging above 3.5 (the default `sensitivity`).
//!
//! A MAD of zero (more than half of the past values equal to the median: a count that rarely
//! changes) would make every other value infinitely far. Then the spread is the mean absolute
//! deviation from the median, scaled by 1.2533 (√(π/2), which also estimates the standard
//! deviation of normal data), as IBM's SPSS does; only when every past value is the same is
//! the score infinite for any other value. Either way the test also asks for a minimum
//! relative change from the median (`min_change`), and that is what keeps a steady series,
//! whose spread is tiny, from crying wolf over noise.

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// The median absolute deviation of `values` from their median `centre`.
pub fn mad(values: &[f64], centre: f64) -> Option<f64> {
    median(&values.iter().map(|x| (x - centre).abs()).collect::<Vec<_>>())
}

/// Scales a MAD to estimate a standard deviation (1 / 0.6745, the normal's third quartile).
pub const MAD_SCALE: f64 = 1.4826;
/// Scales a mean absolute deviation to estimate a standard deviation (√(π/2)).
pub const MEAN_AD_SCALE: f64 = 1.2533;

/// A value compared with the past.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub median: f64,
    /// The spread the score divides by: 1.4826 × MAD, or 1.2533 × the mean absolute deviation
    /// when the MAD is zero; zero when every past value is the same.
    pub spread: f64,
    /// The robust z-score, signed (negative below the median); infinite when the spread is
    /// zero and the value differs from the median.
    pub score: f64,
    /// `|value - median| / |median|`; infinite when the median is zero and the value is not.
    pub change: f64,
}

/// Compare `value` with `past` (not empty).
pub fn compare(value: f64, past: &[f64]) -> Option<Comparison> {
    let median = median(past)?;
    let mad = mad(past, median)?;
    let spread = if mad > 0.0 {
        MAD_SCALE * mad
    } else {
        let mean_ad = past.iter().map(|x| (x - median).abs()).sum::<f64>() / past.len() as f64;
        MEAN_AD_SCALE * mean_ad
    };
    let distance = value - median;
    let score = if distance == 0.0 {
        0.0
    } else if spread > 0.0 {
        distance / spread
    } else {
        f64::INFINITY.copysign(distance)
    };
    let change = if distance == 0.0 {
        0.0
    } else if median != 0.0 {
        distance.abs() / median.abs()
    } else {
        f64::INFINITY
    };
    Some(Comparison {
        median,
        spread,
        score,
        change,
    })
}

impl Comparison {
    /// Whether the value is an anomaly: its score beyond `sensitivity` *and* at least
    /// `min_change` (a fraction) away from the median.
    pub fn is_anomaly(&self, sensitivity: f64, min_change: f64) -> bool {
        self.score.abs() > sensitivity && self.change >= min_change
    }

    /// The values that would not be anomalies, as `(low, high)`: within `sensitivity` spreads
    /// or within `min_change` of the median, whichever reaches further.
    pub fn band(&self, sensitivity: f64, min_change: f64) -> (f64, f64) {
        let half = (sensitivity * self.spread).max(min_change * self.median.abs());
        (self.median - half, self.median + half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand; each row: past values, the value, then median, MAD, score, change,
    /// and whether it is an anomaly at sensitivity 3.5 and min_change 20 %.
    #[test]
    fn hand_worked_table() {
        struct Row {
            past: &'static [f64],
            value: f64,
            median: f64,
            mad: f64,
            score: f64,
            change: f64,
            anomaly: bool,
        }
        let inf = f64::INFINITY;
        let rows = [
            // Sorted 9 10 11 12 13: median 11; deviations 2 1 0 1 2, sorted 0 1 1 2 2: MAD 1.
            // Score (20 - 11) / 1.4826 = 6.0704; change 9 / 11 = 0.8182.
            Row {
                past: &[10.0, 12.0, 11.0, 13.0, 9.0],
                value: 20.0,
                median: 11.0,
                mad: 1.0,
                score: 6.0704,
                change: 0.8182,
                anomaly: true,
            },
            // The same past, a value inside: (12 - 11) / 1.4826 = 0.6745.
            Row {
                past: &[10.0, 12.0, 11.0, 13.0, 9.0],
                value: 12.0,
                median: 11.0,
                mad: 1.0,
                score: 0.6745,
                change: 0.0909,
                anomaly: false,
            },
            // An even count: median (2 + 3) / 2 = 2.5; deviations 1.5 .5 .5 1.5: MAD 1.
            // (8 - 2.5) / 1.4826 = 3.7097, change 5.5 / 2.5 = 2.2.
            Row {
                past: &[1.0, 2.0, 3.0, 4.0],
                value: 8.0,
                median: 2.5,
                mad: 1.0,
                score: 3.7097,
                change: 2.2,
                anomaly: true,
            },
            // A steady series: sorted 10000 10000 10000 10001 10001 10001 10002, median
            // 10001, deviations 1 1 1 0 0 0 1: MAD 1. 10010 scores 9 / 1.4826 = 6.0704, far
            // past 3.5, but is only 0.09 % away: no anomaly, which a plain z-score would
            // have cried.
            Row {
                past: &[10000.0, 10001.0, 10000.0, 10002.0, 10001.0, 10000.0, 10001.0],
                value: 10010.0,
                median: 10001.0,
                mad: 1.0,
                score: 6.0704,
                change: 0.0009,
                anomaly: false,
            },
            // ... and a real drop on it: (5000 - 10001) / 1.4826 = -3373.1283, 5001 / 10001 away.
            Row {
                past: &[10000.0, 10001.0, 10000.0, 10002.0, 10001.0, 10000.0, 10001.0],
                value: 5000.0,
                median: 10001.0,
                mad: 1.0,
                score: -3373.1283,
                change: 0.50005,
                anomaly: true,
            },
            // MAD zero (four of five equal): the mean absolute deviation, (0+0+0+0+30) / 5 = 6,
            // times 1.2533 = 7.5198 is the spread. 50: -50 / 7.5198 = -6.6491, 50 % away.
            Row {
                past: &[100.0, 100.0, 130.0, 100.0, 100.0],
                value: 50.0,
                median: 100.0,
                mad: 0.0,
                score: -6.6491,
                change: 0.5,
                anomaly: true,
            },
            // ... 110: 10 / 7.5198 = 1.3298.
            Row {
                past: &[100.0, 100.0, 130.0, 100.0, 100.0],
                value: 110.0,
                median: 100.0,
                mad: 0.0,
                score: 1.3298,
                change: 0.1,
                anomaly: false,
            },
            // Every past value the same: any other value scores infinite, and min_change
            // decides. 101 is 1 % away: no anomaly; 50 is 50 % away: an anomaly.
            Row {
                past: &[100.0; 7],
                value: 101.0,
                median: 100.0,
                mad: 0.0,
                score: inf,
                change: 0.01,
                anomaly: false,
            },
            Row {
                past: &[100.0; 7],
                value: 50.0,
                median: 100.0,
                mad: 0.0,
                score: -inf,
                change: 0.5,
                anomaly: true,
            },
            Row {
                past: &[100.0; 7],
                value: 100.0,
                median: 100.0,
                mad: 0.0,
                score: 0.0,
                change: 0.0,
                anomaly: false,
            },
            // A median of zero: any other value is an infinite change.
            Row {
                past: &[0.0; 4],
                value: 3.0,
                median: 0.0,
                mad: 0.0,
                score: inf,
                change: inf,
                anomaly: true,
            },
            Row {
                past: &[0.0; 4],
                value: 0.0,
                median: 0.0,
                mad: 0.0,
                score: 0.0,
                change: 0.0,
                anomaly: false,
            },
            // One bad night in the past does not hide the next: sorted 0 98 99 100 101 102,
            // median 99.5, deviations 99.5 1.5 .5 .5 1.5 2.5, sorted .5 .5 1.5 1.5 2.5 99.5:
            // MAD 1.5. 0 scores -99.5 / 2.2239 = -44.7412.
            Row {
                past: &[100.0, 0.0, 101.0, 99.0, 102.0, 98.0],
                value: 0.0,
                median: 99.5,
                mad: 1.5,
                score: -44.7412,
                change: 1.0,
                anomaly: true,
            },
        ];
        let close = |a: f64, b: f64| (a.is_infinite() && a == b) || (a - b).abs() < 5e-5 * b.abs().max(1.0);
        for (i, r) in rows.iter().enumerate() {
            let m = median(r.past).unwrap();
            assert_eq!(m, r.median, "row {i}: median");
            assert_eq!(mad(r.past, m).unwrap(), r.mad, "row {i}: MAD");
            let c = compare(r.value, r.past).unwrap();
            assert!(
                close(c.score, r.score),
                "row {i}: score {} != {}",
                c.score,
                r.score
            );
            assert!(
                close(c.change, r.change),
                "row {i}: change {} != {}",
                c.change,
                r.change
            );
            assert_eq!(c.is_anomaly(3.5, 0.2), r.anomaly, "row {i}: anomaly");
        }
        assert_eq!(median(&[]), None);
        assert_eq!(compare(1.0, &[]), None);
    }

    #[test]
    fn the_band_is_what_passes() {
        // Median 11, spread 1.4826: 3.5 spreads are 5.1891, 20 % of 11 is 2.2.
        let c = compare(11.0, &[10.0, 12.0, 11.0, 13.0, 9.0]).unwrap();
        let (lo, hi) = c.band(3.5, 0.2);
        assert!(
            (lo - 5.8109).abs() < 1e-4 && (hi - 16.1891).abs() < 1e-4,
            "{lo} {hi}"
        );
        // Every past value 100: no spread, so 20 % of the median decides.
        assert_eq!(compare(100.0, &[100.0; 7]).unwrap().band(3.5, 0.2), (80.0, 120.0));
        for x in [5.9, 16.1] {
            assert!(
                !compare(x, &[10.0, 12.0, 11.0, 13.0, 9.0])
                    .unwrap()
                    .is_anomaly(3.5, 0.2)
            );
        }
        for x in [5.8, 16.2] {
            assert!(
                compare(x, &[10.0, 12.0, 11.0, 13.0, 9.0])
                    .unwrap()
                    .is_anomaly(3.5, 0.2)
            );
        }
    }
}
