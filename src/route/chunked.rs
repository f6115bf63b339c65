//! An incremental decoder of HTTP/1.1 chunked transfer coding (RFC 9112 7.1), so that the
//! JSON scanner sees a chunked body's payload as if it had come with a Content-Length.
//!
//! It is fed raw body bytes in successive slices and hands each run of payload bytes to a
//! sink, keeping only a few words of state between calls (no buffer: memory does not grow
//! with the body). The sink may take fewer bytes than offered, and the decoder stops right
//! there, so a caller that must decide after every payload byte that settles something can.
//! It stops at the last chunk (size 0) and does not read trailers. It must never panic, never
//! accept a chunk size that overflows u64, and never wait without bound inside a size line:
//! chunk extensions longer than [`MAX_LINE`] make the body invalid.

/// Longest chunk-size line (size, extensions, whitespace) accepted, in bytes.
pub const MAX_LINE: usize = 4096;

/// Where a [`Chunked::feed`] left the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedStatus {
    /// More body bytes are expected (all input consumed, or the sink stopped early).
    More,
    /// The last chunk has been read: the payload is complete.
    Done,
    /// Not valid chunked coding; nothing more will be decoded.
    Invalid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading the chunk size's hex digits (`digits` significant ones so far).
    Size {
        value: u64,
        digits: u8,
        any: bool,
    },
    /// After the size: whitespace and extensions up to CR (`len` bytes of the line so far).
    Ext {
        value: u64,
        len: u16,
    },
    /// CR of the size line seen.
    SizeLf {
        value: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    Done,
    Invalid,
}

/// The decoder's state: 24 bytes.
#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunked {
    pub fn new() -> Chunked {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
                any: false,
            },
        }
    }

    /// The status without feeding anything.
    pub fn status(&self) -> ChunkedStatus {
        match self.state {
            State::Done => ChunkedStatus::Done,
            State::Invalid => ChunkedStatus::Invalid,
            _ => ChunkedStatus::More,
        }
    }

    /// Decodes `input`; payload bytes go to `sink`, which returns how many of them it took.
    /// Returns how many input bytes were consumed (all of them unless the body ended, turned
    /// invalid or the sink stopped) and the status.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut sink: impl FnMut(&[u8]) -> usize,
    ) -> (usize, ChunkedStatus) {
        let mut i = 0usize;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Data { left } => {
                    let run = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let taken = sink(&input[i..i + run]).min(run);
                    i += taken;
                    let left = left - taken as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    if taken < run {
                        return (i, ChunkedStatus::More);
                    }
                    continue;
                }
                State::Size { value, digits, any } => match hex(b) {
                    Some(d) => {
                        let digits = digits + u8::from(value != 0 || d != 0);
                        if digits > 16 {
                            State::Invalid
                        } else {
                            State::Size {
                                value: value << 4 | u64::from(d),
                                digits,
                                any: true,
                            }
                        }
                    }
                    None if !any => State::Invalid,
                    None => line_byte(b, value, 0),
                },
                State::Ext { value, len } => {
                    if usize::from(len) >= MAX_LINE {
                        State::Invalid
                    } else {
                        line_byte(b, value, len + 1)
                    }
                }
                State::SizeLf { value } => match (b, value) {
                    (b'\n', 0) => State::Done,
                    (b'\n', left) => State::Data { left },
                    _ => State::Invalid,
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                    any: false,
                },
                State::DataCr | State::DataLf => State::Invalid,
                State::Done | State::Invalid => break,
            };
            i += 1;
        }
        (i, self.status())
    }
}

/// The state after byte `b` of a size line past its digits.
fn line_byte(b: u8, value: u64, len: u16) -> State {
    match b {
        b'\r' => State::SizeLf { value },
        // Extensions (`;name=value`, quoted strings) and whitespace: skipped, not judged.
        b'\t' | b' '..=b'~' | 0x80..=0xff => State::Ext { value, len },
        _ => State::Invalid,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Chunked, ChunkedStatus};

    /// Decodes `input` in pieces of `step` bytes; the payload and the final status.
    fn decode(input: &[u8], step: usize) -> (Vec<u8>, ChunkedStatus, usize) {
        let (mut d, mut out, mut used) = (Chunked::new(), Vec::new(), 0);
        let mut status = ChunkedStatus::More;
        for piece in input.chunks(step.max(1)) {
            let (n, s) = d.feed(piece, |p| {
                out.extend_from_slice(p);
                p.len()
            });
            used += n;
            status = s;
            if s != ChunkedStatus::More {
                break;
            }
        }
        (out, status, used)
    }

    #[test]
    fn decodes_in_any_pieces() {
        let body =
            b"5\r\nhello\r\n1;ext=\"a b\"\r\n \r\nA  \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        for step in 1..body.len() {
            let (out, status, used) = decode(body, step);
            assert_eq!(out, b"hello 0123456789", "step {step}");
            assert_eq!(status, ChunkedStatus::Done);
            assert_eq!(used, body.iter().position(|&b| b == b'T').unwrap());
        }
    }

    #[test]
    fn a_sink_that_stops_resumes_where_it_stopped() {
        let body = b"6\r\nabcdef\r\n0\r\n\r\n";
        let mut d = Chunked::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while d.status() == ChunkedStatus::More {
            let (n, _) = d.feed(&body[pos..], |p| {
                out.push(p[0]);
                1
            });
            pos += n;
        }
        assert_eq!(out, b"abcdef");
        assert_eq!(d.status(), ChunkedStatus::Done);
    }

    #[test]
    fn invalid_codings() {
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b"5\r\nhelloX",
            b"5\nhello",
            b"11111111111111111\r\n",
            b"5\r\nhello\r\r",
            b"1\x00\r\n",
        ] {
            assert_eq!(decode(bad, 1).1, ChunkedStatus::Invalid, "{bad:?}");
        }
        let long = [b"1;".as_slice(), &[b'x'; 5000]].concat();
        assert_eq!(decode(&long, 100).1, ChunkedStatus::Invalid);
        // Leading zeros are not significant digits.
        let zeros = b"00000000000000000000001\r\nz\r\n0\r\n\r\n";
        // The empty trailer section after the last chunk is not read.
        let done = (b"z".to_vec(), ChunkedStatus::Done, zeros.len() - 2);
        assert_eq!(decode(zeros, 3), done);
    }
}
