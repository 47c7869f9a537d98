//! The limit on token pastes the server rejected: the consent page and the
//! window accept a pasted PAT from whoever reaches them, so rejected guesses
//! are counted across all requests and refused past a rate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::clock::Timestamp;

/// When recent pastes were rejected; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct PasteLimiter(Arc<Mutex<VecDeque<Timestamp>>>);

impl PasteLimiter {
    /// Whether another paste may be tried at `now`, when `per_minute`
    /// rejected pastes are allowed in any minute.
    pub fn allowed(&self, now: Timestamp, per_minute: usize) -> bool {
        let mut recent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        while recent.front().is_some_and(|t| now - *t >= 60) {
            recent.pop_front();
        }
        recent.len() < per_minute
    }

    /// Notes a paste the server rejected at `now`.
    pub fn note_rejected(&self, now: Timestamp) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_count_for_one_minute() {
        let l = PasteLimiter::default();
        l.note_rejected(100);
        l.note_rejected(110);
        assert!(!l.allowed(120, 2));
        assert!(l.allowed(120, 3));
        assert!(l.allowed(160, 2), "the first is a minute old");
    }
}
