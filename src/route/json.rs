//! An incremental, bounded scanner for the top-level string members of a JSON object body:
//! the `"model"` of an inference request (the `model` matcher) and the key of
//! `hash_key = "json:<key>"`.
//!
//! It is fed successive slices of the (de-chunked) body and keeps a few words of state between
//! them (where it is in the grammar, nesting depth, string and escape state) plus the key being
//! read (at most as long as the longest wanted key) and the wanted value being read (at most
//! [`VALUE_MAX`] bytes): memory is O(key and value caps), never O(body). Only members of the
//! top-level object count: the same key inside `messages` or any nested object or array is
//! skipped with the rest of that value. Keys and values are compared and returned *after*
//! JSON unescaping, as the backend's JSON parser sees them: `"mo\u0064el"` is the key `model`.
//! The first top-level occurrence of a key wins (a body that repeats a key is ambiguous; most
//! parsers keep the last). It stops as soon as every wanted key is settled. It must never
//! panic, never buffer beyond its caps, and never report a member of a nested value.

use super::json_string::{Decoded, Str, StrDecoder};

/// The longest value kept, in bytes after unescaping; a longer one is [`Slot::TooLong`].
pub const VALUE_MAX: usize = 1024;

/// What the scan knows about one wanted key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Not seen yet; the body goes on.
    Pending,
    /// Not a member of the top-level object (the object ended, the body ended or is not a
    /// JSON object, or the scan gave up on invalid JSON).
    Absent,
    /// A top-level member whose value is not a string.
    NotString,
    /// A string longer than [`VALUE_MAX`].
    TooLong,
    /// A string value, unescaped (invalid UTF-8 replaced by U+FFFD).
    Found(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Start,
    KeyOrEnd,
    Key,
    AfterKey,
    BeforeValue,
    /// A top-level string value, collected when `target` is set.
    Value,
    /// A top-level number, true, false or null.
    Scalar,
    /// Inside a nested object or array, `depth` levels down.
    Nested,
    AfterValue,
    Done,
}

/// The scanner. Feed it with the same `keys` every time.
#[derive(Clone, Debug)]
pub struct JsonScan {
    st: St,
    /// Unescapes the top-level key or string value being read.
    text: StrDecoder,
    depth: u32,
    /// Inside a string of a nested value, and just after a backslash in it.
    nested_str: bool,
    nested_esc: bool,
    /// The top-level key being read, unescaped, up to `key_cap` bytes.
    key: Vec<u8>,
    key_cap: usize,
    /// The key was longer than any wanted one.
    key_long: bool,
    /// The wanted key whose value is being read.
    target: Option<usize>,
    value: Vec<u8>,
    slots: Vec<Slot>,
    pending: usize,
}

impl JsonScan {
    /// A scanner for `keys` (at most 255 of them; more are ignored).
    pub fn new<K: AsRef<str>>(keys: &[K]) -> JsonScan {
        let n = keys.len().min(255);
        JsonScan {
            st: St::Start,
            text: StrDecoder::default(),
            depth: 0,
            nested_str: false,
            nested_esc: false,
            key: Vec::new(),
            key_cap: keys.iter().map(|k| k.as_ref().len()).max().unwrap_or(0),
            key_long: false,
            target: None,
            value: Vec::new(),
            slots: vec![Slot::Pending; n],
            pending: n,
        }
    }

    /// What is known about the `i`-th wanted key.
    pub fn slot(&self, i: usize) -> &Slot {
        self.slots.get(i).unwrap_or(&Slot::Absent)
    }

    /// Wanted keys not settled yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Every wanted key is settled: feeding more changes nothing.
    pub fn is_done(&self) -> bool {
        self.pending == 0
    }

    /// The body ended: every key not seen is absent.
    pub fn finish(&mut self) {
        self.st = St::Done;
        for s in &mut self.slots {
            if *s == Slot::Pending {
                *s = Slot::Absent;
            }
        }
        self.pending = 0;
        self.key = Vec::new();
        self.value = Vec::new();
    }

    /// Scans `input`, the body bytes that follow those already fed. Returns how many it
    /// consumed: all of them, unless a key was settled (it stops right after that byte, so the
    /// caller can decide at once) or the scan is done.
    pub fn feed<K: AsRef<str>>(&mut self, keys: &[K], input: &[u8]) -> usize {
        for (i, &b) in input.iter().enumerate() {
            if self.pending == 0 {
                return i;
            }
            let before = self.pending;
            self.step(keys, b);
            if self.pending != before {
                return i + 1;
            }
        }
        input.len()
    }

    fn step<K: AsRef<str>>(&mut self, keys: &[K], b: u8) {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.st {
            St::Start if ws => {}
            St::Start if b == b'{' => self.st = St::KeyOrEnd,
            St::KeyOrEnd | St::AfterKey | St::BeforeValue | St::AfterValue if ws => {}
            St::KeyOrEnd if b == b'"' => {
                self.key.clear();
                self.key_long = false;
                self.text = StrDecoder::default();
                self.st = St::Key;
            }
            St::KeyOrEnd if b == b'}' => self.finish(),
            St::Key => match self.text.byte(b) {
                Str::Nothing => {}
                Str::Bytes(d) => self.push_key(&d),
                Str::End(d) => {
                    self.push_key(&d);
                    self.st = St::AfterKey;
                }
                Str::Error => self.finish(),
            },
            St::AfterKey if b == b':' => {
                self.target = None;
                if !self.key_long {
                    self.target = keys
                        .iter()
                        .take(self.slots.len())
                        .position(|k| k.as_ref().as_bytes() == self.key.as_slice())
                        .filter(|&i| self.slots[i] == Slot::Pending);
                }
                self.st = St::BeforeValue;
            }
            St::BeforeValue => match b {
                b'"' => {
                    self.value.clear();
                    self.text = StrDecoder::default();
                    self.st = St::Value;
                }
                b'{' | b'[' => {
                    self.settle(Slot::NotString);
                    self.depth = 1;
                    self.st = St::Nested;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    self.settle(Slot::NotString);
                    self.st = St::Scalar;
                }
                _ => self.finish(),
            },
            St::Value => match self.text.byte(b) {
                Str::Nothing => {}
                Str::Bytes(d) => self.push_value(&d),
                Str::End(d) => {
                    self.push_value(&d);
                    if self.target.is_some() {
                        let v = String::from_utf8_lossy(&self.value).into_owned();
                        self.settle(Slot::Found(v));
                    }
                    self.st = St::AfterValue;
                }
                Str::Error => self.finish(),
            },
            St::Scalar => match b {
                b',' => self.st = St::KeyOrEnd,
                b'}' => self.finish(),
                _ if ws => self.st = St::AfterValue,
                b'a'..=b'z' | b'0'..=b'9' | b'+' | b'-' | b'.' | b'E' => {}
                _ => self.finish(),
            },
            St::Nested => self.nested_byte(b),
            St::AfterValue if b == b',' => self.st = St::KeyOrEnd,
            St::AfterValue if b == b'}' => self.finish(),
            St::Done => {}
            // Anything else breaks the grammar of the top level: give up, nothing found.
            _ => self.finish(),
        }
    }

    /// Records the value of the key being read (if wanted) and stops collecting it.
    fn settle(&mut self, slot: Slot) {
        if let Some(i) = self.target.take() {
            self.slots[i] = slot;
            self.pending -= 1;
            self.value = Vec::new();
        }
    }

    fn push_key(&mut self, decoded: &Decoded) {
        if self.key.len() + decoded.len() > self.key_cap {
            self.key_long = true;
        } else if !self.key_long {
            self.key.extend_from_slice(decoded);
        }
    }

    fn push_value(&mut self, decoded: &Decoded) {
        if self.target.is_some() {
            if self.value.len() + decoded.len() > VALUE_MAX {
                self.settle(Slot::TooLong);
            } else {
                self.value.extend_from_slice(decoded);
            }
        }
    }

    /// Byte `b` inside a nested value: only strings (with their escapes) and brackets count.
    fn nested_byte(&mut self, b: u8) {
        if self.nested_str {
            match (self.nested_esc, b) {
                (true, _) => self.nested_esc = false,
                (false, b'\\') => self.nested_esc = true,
                (false, b'"') => self.nested_str = false,
                _ => {}
            }
            return;
        }
        match b {
            b'"' => self.nested_str = true,
            b'{' | b'[' => match self.depth.checked_add(1) {
                Some(d) => self.depth = d,
                None => self.finish(),
            },
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.st = St::AfterValue;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
