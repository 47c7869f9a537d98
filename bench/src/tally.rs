//! Counts of what simulated hosts did, by kind, and the first failures,
//! merged across hosts (used by `crash` and `soak`).

use std::collections::BTreeMap;

/// Failures one host keeps; the rest are only counted.
const KEPT_PER_HOST: usize = 5;

/// Counts by what happened, plus failures.
#[derive(Default)]
pub struct Tally {
    /// How often each kind of thing happened.
    pub counts: BTreeMap<&'static str, u64>,
    /// The first few failures, for the report.
    pub failures: Vec<String>,
    /// Every failure.
    pub failed: u64,
}

impl Tally {
    /// Counts one `what`.
    pub fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// How often `what` happened.
    pub fn get(&self, what: &str) -> u64 {
        self.counts.get(what).copied().unwrap_or(0)
    }

    /// Counts a failure, keeping its text if there are few so far.
    pub fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < KEPT_PER_HOST {
            self.failures.push(why);
        }
    }

    /// Adds another host's tally, keeping at most `keep` failure texts.
    pub fn absorb(&mut self, other: Tally, keep: usize) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        self.failed += other.failed;
        for f in other.failures {
            if self.failures.len() < keep {
                self.failures.push(f);
            }
        }
    }
}
