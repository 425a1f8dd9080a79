//! A fixed-size log-linear latency histogram over microseconds (about 1.6% relative error),
//! cheap to record into from one task and to merge across tasks at the end of a run.

/// Values below this are counted exactly, one bucket per microsecond.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above `LINEAR`: the relative error is at most 1/64.
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Powers of two from 2^7 to 2^47 microseconds (about 4 years): more than any run lasts.
const OCTAVES: usize = 41;
const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB;

/// Counts of latencies in microseconds, with exact count, sum, minimum and maximum.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn index_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 7
    let sub = ((v >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    let octave = (exp - 7) as usize;
    (LINEAR as usize + octave * SUB + sub).min(BUCKETS - 1)
}

/// The middle of the range of values that land in bucket `i`.
fn value_of(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let octave = ((i - LINEAR as usize) / SUB) as u32;
    let sub = ((i - LINEAR as usize) % SUB) as u64;
    let exp = octave + 7;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + sub * width + width / 2
}

impl Histogram {
    /// Records one value in microseconds.
    pub fn record(&mut self, us: u64) {
        if let Some(c) = self.counts.get_mut(index_of(us)) {
            *c += 1;
        }
        self.count += 1;
        self.sum += u128::from(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Adds every value of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0), clamped to the exact minimum and maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn large_values_within_two_percent() {
        for v in [1_000u64, 12_345, 999_999, 123_456_789] {
            let mut h = Histogram::default();
            h.record(v);
            h.record(v + 1_000_000_000); // keeps the clamp from hiding the bucket error
            let got = h.quantile(0.5);
            let err = (got as f64 - v as f64).abs() / v as f64;
            assert!(err < 0.02, "{v} -> {got}");
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(20_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), 20_000);
        assert_eq!(a.quantile(0.0), 10);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(997) {
            let i = index_of(v);
            assert!(i >= last);
            last = i;
        }
    }
}
