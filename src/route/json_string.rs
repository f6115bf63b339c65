//! Incremental unescaping of one JSON string (RFC 8259 7), byte by byte: what the top-level
//! key or value the scanner in `json` reads decodes to, `\uXXXX` escapes and surrogate pairs
//! included.
//!
//! It keeps four bytes of state and hands back at most eight decoded bytes per input byte, so
//! the scanner bounds what it keeps itself. It must never panic: an unpaired surrogate
//! becomes U+FFFD, an invalid escape or a raw control character is reported as an error.

const REPLACEMENT: char = '\u{fffd}';

/// Escape state inside a string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    /// After a backslash.
    Backslash,
    /// In `\uXXXX`: hex digits still to read, code unit so far.
    Unicode(u8, u16),
}

/// The decoder of one string whose opening quote was read.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StrDecoder {
    esc: Esc,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
}

/// What one byte of a string amounts to.
pub(super) enum Str {
    /// Part of an escape.
    Nothing,
    Bytes(Decoded),
    /// The closing quote, with what an unpaired surrogate left to add (maybe nothing).
    End(Decoded),
    /// Not valid JSON.
    Error,
}

impl StrDecoder {
    /// The next byte of the string.
    pub(super) fn byte(&mut self, b: u8) -> Str {
        match self.esc {
            Esc::None => match b {
                b'\\' => {
                    self.esc = Esc::Backslash;
                    Str::Nothing
                }
                b'"' => Str::End(self.unpaired().unwrap_or_else(Decoded::none)),
                0x00..=0x1f => Str::Error,
                _ => Str::Bytes(self.after_unpaired(Decoded::byte(b))),
            },
            Esc::Backslash => {
                self.esc = Esc::None;
                let c = match b {
                    b'"' | b'\\' | b'/' => b,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.esc = Esc::Unicode(4, 0);
                        return Str::Nothing;
                    }
                    _ => return Str::Error,
                };
                Str::Bytes(self.after_unpaired(Decoded::byte(c)))
            }
            Esc::Unicode(left, unit) => {
                let Some(d) = (b as char).to_digit(16) else {
                    return Str::Error;
                };
                let unit = unit << 4 | d as u16;
                if left > 1 {
                    self.esc = Esc::Unicode(left - 1, unit);
                    return Str::Nothing;
                }
                self.esc = Esc::None;
                Str::Bytes(self.unit(unit))
            }
        }
    }

    /// A `\uXXXX` code unit: a high surrogate waits for its low half.
    fn unit(&mut self, unit: u16) -> Decoded {
        match (self.high.take(), unit) {
            (Some(high), 0xdc00..=0xdfff) => {
                let c = 0x10000 + ((u32::from(high) - 0xd800) << 10) + (u32::from(unit) - 0xdc00);
                Decoded::char(char::from_u32(c).unwrap_or(REPLACEMENT))
            }
            (high, 0xd800..=0xdbff) => {
                self.high = Some(unit);
                high.map_or_else(Decoded::none, |_| Decoded::char(REPLACEMENT))
            }
            (high, _) => {
                let c = Decoded::char(char::from_u32(u32::from(unit)).unwrap_or(REPLACEMENT));
                match high {
                    Some(_) => Decoded::char(REPLACEMENT).then(c),
                    None => c,
                }
            }
        }
    }

    /// U+FFFD for a high surrogate left without its low half, if one is waiting.
    fn unpaired(&mut self) -> Option<Decoded> {
        self.high.take().map(|_| Decoded::char(REPLACEMENT))
    }

    /// `d`, after the replacement of an unpaired high surrogate if there was one.
    fn after_unpaired(&mut self, d: Decoded) -> Decoded {
        match self.unpaired() {
            Some(r) => r.then(d),
            None => d,
        }
    }
}

/// What a string byte or escape decodes to: up to 8 bytes (a replacement character and one
/// UTF-8 character at most).
#[derive(Clone, Copy, Debug)]
pub(super) struct Decoded {
    buf: [u8; 8],
    len: u8,
}

impl Decoded {
    fn none() -> Decoded {
        Decoded {
            buf: [0; 8],
            len: 0,
        }
    }
    fn byte(b: u8) -> Decoded {
        let mut d = Decoded::none();
        d.buf[0] = b;
        d.len = 1;
        d
    }
    fn char(c: char) -> Decoded {
        let mut d = Decoded::none();
        d.len = c.encode_utf8(&mut d.buf).len() as u8;
        d
    }
    fn then(mut self, other: Decoded) -> Decoded {
        let (at, n) = (usize::from(self.len), usize::from(other.len));
        let n = n.min(self.buf.len() - at);
        self.buf[at..at + n].copy_from_slice(&other.buf[..n]);
        self.len += n as u8;
        self
    }
}

impl std::ops::Deref for Decoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::{Str, StrDecoder};

    /// The bytes `text` (after its opening quote, closing quote included) decodes to.
    fn decode(text: &[u8]) -> Option<Vec<u8>> {
        let mut d = StrDecoder::default();
        let mut out = Vec::new();
        for &b in text {
            match d.byte(b) {
                Str::Nothing => {}
                Str::Bytes(x) => out.extend_from_slice(&x),
                Str::End(x) => {
                    out.extend_from_slice(&x);
                    return Some(out);
                }
                Str::Error => return None,
            }
        }
        None
    }

    #[test]
    fn escapes() {
        assert_eq!(
            decode(br#"a\"b\\c\/\b\f\n\r\t""#).unwrap(),
            b"a\"b\\c/\x08\x0c\n\r\t"
        );
        assert_eq!(decode(br#"\u00e9\ud83d\ude00""#).unwrap(), "é😀".as_bytes());
        assert_eq!(
            decode(br#"\ud800\ud800x""#).unwrap(),
            "\u{fffd}\u{fffd}x".as_bytes()
        );
        assert_eq!(decode(br#"\udc00""#).unwrap(), "\u{fffd}".as_bytes());
        assert_eq!(decode(br#"\ud800""#).unwrap(), "\u{fffd}".as_bytes());
        assert_eq!(decode(br#"\ud800\u0041""#).unwrap(), "\u{fffd}A".as_bytes());
        assert_eq!(decode("é\"".as_bytes()).unwrap(), "é".as_bytes());
        assert_eq!(decode(br#"\x""#), None);
        assert_eq!(decode(br#"\u00g0""#), None);
        assert_eq!(decode(b"a\nb\""), None);
    }
}
