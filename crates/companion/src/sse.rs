//! An incremental `text/event-stream` parser (the WHATWG rules the MCP
//! Streamable HTTP transport uses): bytes in, complete events out. The
//! bridge reads the companion's streams with it, and the REST client the
//! answer of an MCP server it probes. Not the
//! `sse-stream` crate: that one has no size bound, and ends the stream on
//! lines these rules say to ignore.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `id:` in effect for this event, if any was ever set.
    pub id: Option<String>,
    /// The `event:` type; `None` means the default, `message`.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// A stream that broke the format or the size bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event stream sent an event larger than {0} bytes")]
pub struct TooLarge(pub usize);

/// Parser state; feed it chunks as they arrive.
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    // A chunk ended on '\r': a '\n' opening the next chunk belongs to it.
    skip_lf: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    last_id: Option<String>,
    max: usize,
}

impl Parser {
    /// A parser that refuses events (and unterminated lines) over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            skip_lf: false,
            data: String::new(),
            has_data: false,
            event: None,
            last_id: None,
            max,
        }
    }

    /// The last `id:` seen, for `Last-Event-ID` on reconnection.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Consumes `chunk`, returning the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLarge> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.skip_lf = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(ev) = self.line(&line) {
                        out.push(ev);
                    }
                }
                _ => {
                    self.buf.push(b);
                    if self.buf.len() + self.data.len() > self.max {
                        return Err(TooLarge(self.max));
                    }
                }
            }
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(Event {
            id: self.last_id.clone(),
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new(1 << 20);
        chunks
            .iter()
            .flat_map(|c| p.feed(c).expect("within bounds"))
            .collect()
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let stream =
            b"id: 7\nevent: message\ndata: {\"a\":\ndata: 1}\n\n: keep-alive\n\ndata:x\r\n\r\n";
        let whole = all(&[stream]);
        for cut in 0..stream.len() {
            assert_eq!(
                all(&[&stream[..cut], &stream[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        assert_eq!(
            whole,
            vec![
                Event {
                    id: Some("7".into()),
                    event: Some("message".into()),
                    data: "{\"a\":\n1}".into()
                },
                Event {
                    id: Some("7".into()),
                    event: None,
                    data: "x".into()
                },
            ]
        );
    }

    #[test]
    fn bare_cr_ends_lines_and_crlf_split_across_chunks_is_one_break() {
        assert_eq!(all(&[b"data: a\r", b"\n\r\n"]).len(), 1);
        assert_eq!(all(&[b"data: a\r\rdata: b\r\r"]).len(), 2);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert!(all(&[b"event: ping\nid: 3\n\n"]).is_empty());
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = Parser::new(16);
        assert_eq!(p.feed(b"data: 0123456789abcdef"), Err(TooLarge(16)));
    }
}
