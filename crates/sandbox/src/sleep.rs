//! The sleeping graph: hosted Spor suspends an idle organization's graph,
//! and the next request wakes it, answering only once it is up (about half
//! a second warm, up to about a minute cold). `serve --wake-delay-ms`
//! plays that: the server starts asleep, the first request after an idle
//! spell (and any arriving while it wakes) is answered after the delay.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long without a request before the graph sleeps again, unless told.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(300);

/// Whether the graph sleeps, and when it is (or will be) awake.
#[derive(Debug)]
pub struct Sleep {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// How long a wake takes; `None`: the graph never sleeps.
    wake_delay: Option<Duration>,
    /// A spell this long without requests puts it to sleep.
    idle: Duration,
    /// When the current wake ends (or ended); `None`: asleep.
    awake_at: Option<Instant>,
    /// The last request's arrival (or the end of the wake it waited for).
    last: Option<Instant>,
}

impl Default for Sleep {
    fn default() -> Self {
        Self::new(None, DEFAULT_IDLE)
    }
}

impl Sleep {
    /// Asleep from the start when `wake_delay` is given; never otherwise.
    pub fn new(wake_delay: Option<Duration>, idle: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                wake_delay,
                idle,
                awake_at: None,
                last: None,
            }),
        }
    }

    /// A request arrives at `now`: when it may be answered, if not at once.
    pub fn admit(&self, now: Instant) -> Option<Instant> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let delay = s.wake_delay?;
        let idle_spell = s
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= s.idle);
        let ready = match s.awake_at {
            Some(at) if !idle_spell => at,
            _ => now + delay,
        };
        s.awake_at = Some(ready);
        s.last = Some(now.max(ready));
        (ready > now).then_some(ready)
    }

    /// Puts the graph to sleep now (tests need not wait an idle spell),
    /// with another wake delay if given.
    pub fn sleep_now(&self, wake_delay: Option<Duration>) -> Option<Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if wake_delay.is_some() {
            s.wake_delay = wake_delay;
        }
        s.awake_at = None;
        s.last = None;
        s.wake_delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_graph_that_never_sleeps_answers_at_once() {
        let s = Sleep::default();
        assert_eq!(s.admit(Instant::now()), None);
    }

    #[test]
    fn the_first_request_wakes_it_and_those_during_the_wake_wait_too() {
        let s = Sleep::new(Some(40 * SEC), 300 * SEC);
        let t0 = Instant::now();
        assert_eq!(s.admit(t0), Some(t0 + 40 * SEC), "asleep from the start");
        assert_eq!(s.admit(t0 + 10 * SEC), Some(t0 + 40 * SEC), "still waking");
        assert_eq!(s.admit(t0 + 41 * SEC), None, "awake");
        assert_eq!(s.admit(t0 + 300 * SEC), None, "busy: still awake");
        assert_eq!(
            s.admit(t0 + 601 * SEC),
            Some(t0 + 641 * SEC),
            "after an idle spell it sleeps again"
        );
    }

    #[test]
    fn sleep_now_sends_it_to_sleep_with_another_delay() {
        let s = Sleep::new(Some(SEC), 300 * SEC);
        let t0 = Instant::now();
        s.admit(t0);
        assert_eq!(s.admit(t0 + 2 * SEC), None);
        assert_eq!(s.sleep_now(Some(3 * SEC)), Some(3 * SEC));
        assert_eq!(s.admit(t0 + 3 * SEC), Some(t0 + 6 * SEC));
    }
}
