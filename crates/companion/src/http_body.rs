//! Reading HTTP response bodies from servers we do not control, always
//! bounded: in size (nothing beyond the limit is buffered) and, where asked,
//! in idle time. The gateway, the REST client and the bridge read through
//! these two functions.

use std::time::Duration;

/// Why a whole body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (by `Content-Length` or by what arrived).
    TooLarge,
    /// The transfer failed (cut, reset, timed out by the client).
    Broken(reqwest::Error),
    /// Nothing arrived for the idle bound.
    Idle,
}

/// Reads a whole body of at most `limit` bytes, giving up when nothing
/// arrives for `idle` (if given).
pub async fn read_whole(
    resp: &mut reqwest::Response,
    limit: usize,
    idle: Option<Duration>,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    loop {
        let next = match idle {
            Some(idle) => tokio::time::timeout(idle, resp.chunk())
                .await
                .map_err(|_| BodyError::Idle)?,
            None => resp.chunk().await,
        };
        match next.map_err(BodyError::Broken)? {
            None => return Ok(out),
            Some(chunk) => {
                if out.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
}

/// Reads the start of a body: at most `limit` bytes, or less once `enough`
/// says what arrived so far will do (a stream may stay open after the part
/// we need). The rest is left unread.
pub async fn read_prefix(
    resp: &mut reqwest::Response,
    limit: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit || enough(&out) {
            break;
        }
    }
    Ok(out)
}
