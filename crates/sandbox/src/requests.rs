//! How many requests the sandbox received, by method and route, so a test
//! can tell that nothing asked it anything while a client sat idle.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Requests received since start, keyed `"METHOD /path"`.
#[derive(Debug, Default)]
pub struct Requests {
    seen: Mutex<BTreeMap<String, u64>>,
}

impl Requests {
    /// Counts one request.
    pub fn count(&self, method: &str, path: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *seen.entry(format!("{method} {path}")).or_default() += 1;
    }

    /// Every route asked so far, with its count, and the total.
    pub fn snapshot(&self) -> (BTreeMap<String, u64>, u64) {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let total = seen.values().sum();
        (seen, total)
    }
}
