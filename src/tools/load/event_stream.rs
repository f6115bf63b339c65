//! An incremental parser for `text/event-stream` bodies: counts the events that carry data
//! (one token chunk each, as vLLM/SGLang/TGI send them) and spots the `[DONE]` sentinel.
//! Must never hold more than one capped line: event payloads are counted, not kept.

use super::error::RequestError;

/// Longest SSE line accepted; a token chunk with logprobs is a few KiB, a line of a mebibyte
/// is a broken or hostile server.
pub const MAX_SSE_LINE: usize = 1 << 20;

const DONE: &[u8] = b"[DONE]";

/// Counts from one [`EventStream::feed`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    pub tokens: u64,
    pub done: bool,
}

#[derive(Debug, Default)]
pub struct EventStream {
    line: Vec<u8>,
    /// The event being assembled has at least one `data` field.
    has_data: bool,
    /// Its data is exactly "[DONE]" so far (only the first bytes are compared).
    data_prefix: Vec<u8>,
    data_is_long: bool,
    done: bool,
}

impl EventStream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds body bytes; events after `[DONE]` are ignored.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Fed, RequestError> {
        let mut fed = Fed::default();
        while !bytes.is_empty() && !self.done {
            let (part, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            if self.line.len() + part.len() > MAX_SSE_LINE {
                return Err(RequestError::protocol(format!(
                    "event-stream line longer than {MAX_SSE_LINE} bytes"
                )));
            }
            bytes = rest;
            if !complete {
                self.line.extend_from_slice(part);
                break;
            }
            if self.line.is_empty() {
                self.line_done(part, &mut fed);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(part);
                self.line_done(&line, &mut fed);
                line.clear();
                self.line = line;
            }
        }
        fed.done = self.done;
        Ok(fed)
    }

    fn line_done(&mut self, line: &[u8], fed: &mut Fed) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch(fed);
            return;
        }
        if line.starts_with(b":") {
            return; // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if field != b"data" {
            return; // event, id, retry: irrelevant to counting
        }
        if self.has_data {
            self.push_data(b"\n");
        }
        self.has_data = true;
        self.push_data(value);
    }

    fn push_data(&mut self, bytes: &[u8]) {
        if self.data_prefix.len() + bytes.len() > DONE.len() {
            self.data_is_long = true;
        } else {
            self.data_prefix.extend_from_slice(bytes);
        }
    }

    fn dispatch(&mut self, fed: &mut Fed) {
        if self.has_data {
            if !self.data_is_long && self.data_prefix == DONE {
                self.done = true;
            } else {
                fed.tokens += 1;
            }
        }
        self.has_data = false;
        self.data_is_long = false;
        self.data_prefix.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(body: &[u8], piece: usize) -> Fed {
        let mut es = EventStream::new();
        let mut total = Fed::default();
        for chunk in body.chunks(piece) {
            let fed = es.feed(chunk).unwrap();
            total.tokens += fed.tokens;
            total.done = fed.done;
        }
        total
    }

    #[test]
    fn counts_events_until_done_in_any_split() {
        let body = b": ping\r\n\r\ndata: {\"t\":1}\r\n\r\nevent: x\ndata: a\ndata: b\n\ndata:[DONE]\n\ndata: late\n\n";
        for piece in 1..body.len() {
            assert_eq!(
                count(body, piece),
                Fed {
                    tokens: 2,
                    done: true
                },
                "piece {piece}"
            );
        }
    }

    #[test]
    fn incomplete_event_is_not_counted_and_done_needs_exact_data() {
        assert_eq!(
            count(b"data: x\n", 3),
            Fed {
                tokens: 0,
                done: false
            }
        );
        assert_eq!(
            count(b"data: [DONE] \n\n", 3),
            Fed {
                tokens: 1,
                done: false
            }
        );
        assert_eq!(
            count(b"data: [DONE]\ndata: more\n\n", 3),
            Fed {
                tokens: 1,
                done: false
            }
        );
        assert_eq!(
            count(b"data\n\n", 2),
            Fed {
                tokens: 1,
                done: false
            }
        );
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut es = EventStream::new();
        let big = vec![b'a'; MAX_SSE_LINE / 2 + 1];
        es.feed(&big).unwrap();
        assert!(es.feed(&big).is_err());
    }
}
