//! An incremental `text/event-stream` parser: bytes in as the network delivers them
//! (a chunk may end inside a line or a UTF-8 sequence), whole events out.
//!
//! Follows the WHATWG rules that matter here: `\n`, `\r\n` or `\r` end a line; a blank
//! line dispatches the event; `:` lines are comments (keep-alives); `data:` lines
//! join with `\n`; one space after the colon is dropped; the default event name is
//! `message`. Unlike a browser, an event left unterminated at the end of the stream
//! is still delivered by [`SseParser::finish`].

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Parser state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one is its pair.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line(&String::from_utf8_lossy(&line), &mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Ends the stream: delivers a last event that had no blank line after it.
    pub fn finish(mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line(&String::from_utf8_lossy(&line), &mut out);
        }
        self.line("", &mut out);
        out.pop()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.event.is_some() || self.data.is_some() {
                out.push(SseEvent {
                    event: self.event.take().unwrap_or_else(|| "message".into()),
                    data: self.data.take().unwrap_or_default(),
                });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_across_chunks_anywhere() {
        let stream = "event: piece\ndata: {\"text\":\"h\u{e9}\"}\n\n: keep-alive\n\n\
                      event: piece\r\ndata: a\r\ndata: b\r\n\r\nevent:done\ndata:{}\n\n";
        let want = vec![
            ev("piece", "{\"text\":\"h\u{e9}\"}"),
            ev("piece", "a\nb"),
            ev("done", "{}"),
        ];
        // Every split point, including inside the two-byte é and between \r and \n.
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&bytes[..cut]);
            got.extend(p.push(&bytes[cut..]));
            assert_eq!(got, want, "cut at {cut}");
        }
        // Byte by byte.
        let mut p = SseParser::new();
        let got: Vec<_> = bytes.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn default_name_and_unterminated_last_event() {
        let mut p = SseParser::new();
        assert_eq!(
            p.push(b"data: x\n\nevent: done\ndata: {}"),
            [ev("message", "x")]
        );
        assert_eq!(p.finish(), Some(ev("done", "{}")));
        assert_eq!(SseParser::new().finish(), None);
    }
}
