//! An incremental decoder for HTTP/1.1 chunked transfer-encoding, fed whatever bytes have
//! arrived. Must never buffer or trust unbounded input: size and trailer lines are capped, and
//! sizes that overflow are rejected.

use std::ops::Range;

use super::error::RequestError;

/// Longest chunk-size or trailer line accepted: a size needs at most 16 hex digits, and real
/// servers send few or short extensions; a longer line is garbage or an attack.
pub const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data { remaining: u64 },
    DataEnd,
    Trailers,
    Done,
}

/// One decoding step over the buffered input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of input used by this step; 0 (and no data, not done) means "need more input".
    pub consumed: usize,
    /// Body bytes, as a range into the input given to [`ChunkedDecoder::step`].
    pub data: Option<Range<usize>>,
    /// The terminating zero-size chunk and the trailers have been read.
    pub done: bool,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder { state: State::Size }
    }

    pub fn step(&mut self, input: &[u8]) -> Result<Step, RequestError> {
        let need_more = Step {
            consumed: 0,
            data: None,
            done: false,
        };
        let skip = |consumed| Step {
            consumed,
            data: None,
            done: false,
        };
        match self.state {
            State::Done => Ok(Step {
                consumed: 0,
                data: None,
                done: true,
            }),
            State::Size => {
                let Some(end) = find_line(input)? else {
                    return Ok(need_more);
                };
                let size = parse_size(&input[..end])?;
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data { remaining: size }
                };
                Ok(skip(end + 1))
            }
            State::Data { remaining } => {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                if n == 0 {
                    return Ok(need_more);
                }
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    State::DataEnd
                } else {
                    State::Data { remaining: left }
                };
                Ok(Step {
                    consumed: n,
                    data: Some(0..n),
                    done: false,
                })
            }
            State::DataEnd => match input {
                [] | [b'\r'] => Ok(need_more),
                [b'\r', b'\n', ..] => {
                    self.state = State::Size;
                    Ok(skip(2))
                }
                [b'\n', ..] => {
                    self.state = State::Size;
                    Ok(skip(1))
                }
                _ => Err(RequestError::protocol("chunk data not followed by CRLF")),
            },
            State::Trailers => {
                let Some(end) = find_line(input)? else {
                    return Ok(need_more);
                };
                let line = trim_cr(&input[..end]);
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(Step {
                        consumed: end + 1,
                        data: None,
                        done: true,
                    });
                }
                Ok(skip(end + 1))
            }
        }
    }
}

/// Index of the '\n' ending the first line, if it has arrived within the line cap.
fn find_line(input: &[u8]) -> Result<Option<usize>, RequestError> {
    let window = &input[..input.len().min(MAX_CHUNK_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i)),
        None if input.len() >= MAX_CHUNK_LINE => Err(RequestError::protocol(format!(
            "chunk line longer than {MAX_CHUNK_LINE} bytes"
        ))),
        None => Ok(None),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_size(line: &[u8]) -> Result<u64, RequestError> {
    let line = trim_cr(line);
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    let text = std::str::from_utf8(digits)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 16 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    text.and_then(|t| u64::from_str_radix(t, 16).ok())
        .ok_or_else(|| {
            RequestError::protocol(format!(
                "bad chunk size line {:?}",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` delivered in pieces of `piece` bytes, like a socket would.
    fn decode(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), RequestError> {
        let mut dec = ChunkedDecoder::new();
        let (mut buf, mut fed, mut out) = (Vec::new(), 0, Vec::new());
        loop {
            let step = dec.step(&buf)?;
            if let Some(r) = step.data.clone() {
                out.extend_from_slice(&buf[r]);
            }
            buf.drain(..step.consumed);
            if step.done {
                return Ok((out, buf.len() + input.len() - fed));
            }
            if step.consumed == 0 {
                if fed == input.len() {
                    return Err(RequestError::closed("eof"));
                }
                let n = piece.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
        }
    }

    #[test]
    fn decodes_in_any_split() {
        let wire =
            b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, left) = decode(wire, piece).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "piece {piece}");
            assert_eq!(left, 4, "the next response's bytes stay unread");
        }
    }

    #[test]
    fn accepts_bare_lf() {
        let (body, _) = decode(b"3\nabc\n0\n\n", 2).unwrap();
        assert_eq!(body, b"abc");
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(b"zz\r\n", 8).is_err());
        assert!(decode(b"\r\n", 8).is_err());
        assert!(
            decode(b"11111111111111111\r\n", 64).is_err(),
            "17 hex digits"
        );
        assert!(
            decode(b"3\r\nabcX\r\n", 64).is_err(),
            "missing CRLF after data"
        );
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert_eq!(
            decode(&long, 9000).unwrap_err().kind,
            super::super::error::ErrorKind::Protocol
        );
    }

    #[test]
    fn truncated_stream_needs_more() {
        let err = decode(b"5\r\nhel", 3).unwrap_err();
        assert_eq!(err.detail, "eof");
    }
}
