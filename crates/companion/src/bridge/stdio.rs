//! The host's side of the bridge: newline-delimited JSON-RPC read from
//! stdin, and one message per line written to stdout, in order, by a single
//! writer that every task queues to.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Largest message accepted from the host or the server.
pub(super) const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// How long in-flight messages may finish after stdin closes.
pub(super) const DRAIN: Duration = Duration::from_secs(3);

/// What goes to the host's stdout, in order.
pub(super) enum Out {
    Line(Vec<u8>),
    /// Everything before this has been queued: flush and stop.
    End,
}

/// The queue to the host's stdout; cloned by every task that answers.
#[derive(Clone)]
pub(super) struct Host(mpsc::Sender<Out>);

impl Host {
    /// The queue, and its receiving end for [`spawn_writer`].
    pub(super) fn channel() -> (Self, mpsc::Receiver<Out>) {
        let (tx, rx) = mpsc::channel(256);
        (Self(tx), rx)
    }

    /// Queues one line (without its newline) for the host.
    pub(super) async fn emit(&self, line: Vec<u8>) {
        let _ = self.0.send(Out::Line(line)).await;
    }

    /// Tells the writer that nothing more will come.
    pub(super) async fn end(&self) {
        let _ = self.0.send(Out::End).await;
    }
}

/// Writes queued lines to `output` until [`Out::End`]; if the host stops
/// reading, says so on `stopping`.
pub(super) fn spawn_writer<W>(
    mut rx: mpsc::Receiver<Out>,
    mut output: W,
    stopping: watch::Sender<bool>,
) -> JoinHandle<()>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(Out::Line(mut line)) = rx.recv().await {
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                // The host is gone: nothing more can be delivered.
                let _ = stopping.send(true);
                break;
            }
        }
    })
}

/// One JSON message per line: valid JSON has raw line breaks only as
/// whitespace, so dropping them keeps the message and makes it one line.
pub(super) fn one_line(bytes: &[u8]) -> Option<Vec<u8>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).ok()?;
    Some(
        bytes
            .iter()
            .copied()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect(),
    )
}

/// Reads one line (without its terminator); `Ok(None)` at end of input.
/// A line over `max` bytes is skipped and reported as `Err`.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let ended = done > chunk.len();
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        r.consume(done);
        if ended {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(max)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Ok(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut r = tokio::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        while let Some(l) = read_line(&mut r, max).await.expect("in-memory read") {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_on_newlines_and_overlong_ones_skipped() {
        let got = lines(b"{\"a\":1}\r\n0123456789abc\n\n{}", 8).await;
        assert_eq!(
            got,
            vec![
                Ok(b"{\"a\":1}".to_vec()),
                Err(8),
                Ok(Vec::new()),
                Ok(b"{}".to_vec())
            ]
        );
    }

    #[test]
    fn answers_become_one_line_and_non_json_is_refused() {
        assert_eq!(
            one_line(b"{\n  \"a\": \"x\\ny\"\r\n}").as_deref(),
            Some(&b"{  \"a\": \"x\\ny\"}"[..])
        );
        assert_eq!(one_line(b"{\"a\":"), None);
        assert_eq!(one_line(b"<html>"), None);
    }
}
