//! Turning measurements into the report's numbers.

use crate::mcp::Chunk;

/// Throughput and latency of one target at one concurrency.
pub struct Summary {
    /// Successful calls per second of timed wall clock.
    pub rps: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// 99.9th percentile, ms.
    pub p999: f64,
    /// Successful calls.
    pub ok: usize,
    /// Failed calls.
    pub errors: usize,
}

/// The `q`-quantile (nearest rank) of sorted microseconds, in ms.
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

impl Summary {
    /// Summarises a target's chunks (their wall times add up).
    pub fn of(chunk: &mut Chunk) -> Self {
        chunk.latencies_us.sort_unstable();
        let l = &chunk.latencies_us;
        let secs = chunk.elapsed.as_secs_f64();
        Self {
            rps: if secs > 0.0 {
                l.len() as f64 / secs
            } else {
                0.0
            },
            p50: quantile_ms(l, 0.50),
            p99: quantile_ms(l, 0.99),
            p999: quantile_ms(l, 0.999),
            ok: l.len(),
            errors: chunk.errors,
        }
    }
}

/// The median of some values (the mean of the middle two for an even
/// count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 500.0);
        assert_eq!(quantile_ms(&v, 0.99), 990.0);
        assert_eq!(quantile_ms(&v, 0.999), 999.0);
        assert_eq!(quantile_ms(&[7000], 0.999), 7.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
