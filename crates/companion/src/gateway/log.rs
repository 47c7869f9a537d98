//! The call-log entries of one forwarded request: what it called (method
//! and tool name, never arguments), in which protocol era, whether its
//! mirrored headers agreed with its body, how it ended and how long it
//! took, queued when the answer is finished or dropped.

use spor_wire::peek::Peek;
use tokio::time::Instant;

use super::error::GatewayError;
use super::mirror;
use super::state::Principal;
use crate::state::AppState;
use crate::store::{CallOutcome, CallRecord, HeaderCheck};

/// The calls one request carries, logged once, when this is dropped: after
/// the answer was handed over, or its stream ended (a streamed tool call's
/// duration covers the whole call, and a broken stream is not `ok`), or the
/// host went away.
pub(super) struct PendingLog {
    state: AppState,
    principal: Principal,
    account_id: String,
    calls: Vec<Peek>,
    /// What the mirrored headers said of the body (one message only).
    header_check: Option<HeaderCheck>,
    started: Instant,
    /// How it ended, as far as is known.
    pub(super) outcome: CallOutcome,
    /// The upstream's status, if it answered.
    pub(super) status: Option<u16>,
}

impl PendingLog {
    /// Starts timing the calls as they are sent upstream.
    pub(super) fn start(
        state: &AppState,
        principal: &Principal,
        account_id: &str,
        calls: Vec<Peek>,
        header_check: Option<HeaderCheck>,
    ) -> Self {
        Self {
            state: state.clone(),
            principal: principal.clone(),
            account_id: account_id.to_string(),
            calls,
            header_check,
            started: Instant::now(),
            outcome: CallOutcome::Ok,
            status: None,
        }
    }

    /// Logs the calls now, as ended with `outcome`.
    pub(super) fn end(mut self, outcome: CallOutcome) {
        self.outcome = outcome;
    }

    /// Logs the calls now, as ended by `e` (unless `e` is one the call log
    /// does not record, when the outcome so far stands).
    pub(super) fn fail(self, e: &GatewayError) {
        if let Some(outcome) = e.outcome() {
            self.end(outcome);
        }
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        if self.calls.is_empty() {
            return;
        }
        let at = self.state.now();
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let rows = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|p| CallRecord {
                at,
                grant_id: self.principal.grant_id().map(str::to_string),
                account_id: self.account_id.clone(),
                era: Some(mirror::era(&p)),
                method: p.method,
                tool: p.tool,
                outcome: self.outcome,
                status: self.status,
                duration_ms,
                header_check: self.header_check,
            })
            .collect();
        self.state.gateway.calls.push(rows);
    }
}
