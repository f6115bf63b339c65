//! A small TLS ClientHello reader: from the first bytes of a connection, the server name (SNI)
//! and the ALPN protocols a client asks for, so that a TLS connection can be routed and then
//! relayed untouched (passthrough, ringlb never terminates TLS).
//!
//! It reads the record layer (content type 22, version 3.x, length at most 2^14) and gathers
//! the first handshake message across as many records as it spans, up to the cap; it then
//! walks the ClientHello only as far as the extensions, and of those reads only
//! `server_name` (0) and `application_layer_protocol_negotiation` (16). It must never read past
//! the slice or the cap, never allocate more than the handshake message it was given, and
//! never panic: every length is checked before it is used, and any inconsistency answers
//! [`TlsParse::NotTls`] (the connection then goes to the listener's default pool).

/// What the first bytes of a connection say about TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsParse {
    /// A plausible start of a TLS handshake: more bytes are needed (within the cap).
    NeedMore,
    /// Not a TLS ClientHello (or a malformed one).
    NotTls,
    ClientHello(ClientHello),
}

/// What routing needs from a ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The first `host_name` of the server_name extension, as sent (compare it
    /// case-insensitively); None without the extension or with a name that is not UTF-8.
    pub sni: Option<String>,
    /// The ALPN protocol names in the client's order (non-UTF-8 bytes replaced by U+FFFD).
    pub alpn: Vec<String>,
    /// Bytes from the start of the slice to the end of the handshake message, record headers
    /// included; at most the slice's length and the cap.
    pub len: usize,
}

/// The largest TLSPlaintext fragment (RFC 8446 5.1).
const MAX_RECORD: usize = 16384;
const RECORD_HEADER: usize = 5;
const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// Reads the ClientHello at the start of `buf`, looking at no more than `cap` bytes.
pub fn parse_client_hello(buf: &[u8], cap: usize) -> TlsParse {
    let buf = &buf[..buf.len().min(cap)];
    // The handshake bytes seen so far: borrowed from the first record while it holds them
    // all (the common case), copied together once a second record is needed.
    let mut first: &[u8] = &[];
    let mut joined: Option<Vec<u8>> = None;
    let mut pos = 0usize;
    loop {
        let header = &buf[pos..buf.len().min(pos + RECORD_HEADER)];
        if !record_header_plausible(header) {
            return TlsParse::NotTls;
        }
        if header.len() < RECORD_HEADER {
            return TlsParse::NeedMore;
        }
        let record_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if record_len == 0 || record_len > MAX_RECORD {
            return TlsParse::NotTls;
        }
        let start = pos + RECORD_HEADER;
        let end = buf.len().min(start + record_len);
        let fragment = &buf[start..end];
        match joined.as_mut() {
            Some(all) => all.extend_from_slice(fragment),
            None if pos == 0 => first = fragment,
            None => {
                let mut all = Vec::with_capacity(first.len() + fragment.len());
                all.extend_from_slice(first);
                all.extend_from_slice(fragment);
                joined = Some(all);
            }
        }
        let seen: &[u8] = joined.as_deref().unwrap_or(first);
        if let Some(&kind) = seen.first() {
            if kind != CLIENT_HELLO {
                return TlsParse::NotTls;
            }
        }
        if seen.len() >= 4 {
            let body_len =
                usize::from(seen[1]) << 16 | usize::from(seen[2]) << 8 | usize::from(seen[3]);
            if seen.len() >= 4 + body_len {
                // Bytes of this record past the message are not ours to judge.
                let len = end - (seen.len() - 4 - body_len);
                return match read_hello(&seen[4..4 + body_len]) {
                    Some((sni, alpn)) => TlsParse::ClientHello(ClientHello { sni, alpn, len }),
                    None => TlsParse::NotTls,
                };
            }
        }
        if end < start + record_len {
            return TlsParse::NeedMore;
        }
        pos = end;
    }
}

/// Whether the bytes present of a record header (0 to 5) can start a handshake record.
fn record_header_plausible(h: &[u8]) -> bool {
    h.first().is_none_or(|&t| t == HANDSHAKE)
        && h.get(1).is_none_or(|&major| major == 3)
        && h.get(2).is_none_or(|&minor| minor <= 4)
}

/// A cursor that answers None instead of reading past its slice.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A block with a `u8` or `u16` length prefix.
    fn block8(&mut self) -> Option<Reader<'a>> {
        let n = self.u8()?;
        self.take(usize::from(n)).map(|b| Reader { b })
    }
    fn block16(&mut self) -> Option<Reader<'a>> {
        let n = self.u16()?;
        self.take(usize::from(n)).map(|b| Reader { b })
    }
    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

/// The SNI and ALPN of a ClientHello body; None if it is malformed.
fn read_hello(body: &[u8]) -> Option<(Option<String>, Vec<String>)> {
    let mut r = Reader { b: body };
    let version = r.take(2)?;
    if version[0] != 3 {
        return None;
    }
    r.take(32)?; // random
    if r.block8()?.b.len() > 32 {
        return None; // legacy_session_id
    }
    let suites = r.block16()?;
    if suites.b.is_empty() || suites.b.len() % 2 != 0 {
        return None;
    }
    if r.block8()?.is_empty() {
        return None; // compression methods: at least "null"
    }
    let (mut sni, mut alpn, mut seen_sni, mut seen_alpn) = (None, Vec::new(), false, false);
    if r.is_empty() {
        return Some((sni, alpn)); // no extensions (TLS 1.2 and older may omit them)
    }
    let mut exts = r.block16()?;
    if !r.is_empty() {
        return None;
    }
    while !exts.is_empty() {
        let kind = exts.u16()?;
        let mut data = exts.block16()?;
        match kind {
            EXT_SERVER_NAME if !seen_sni => {
                seen_sni = true;
                let mut names = data.block16()?;
                while !names.is_empty() {
                    let name_type = names.u8()?;
                    let name = names.block16()?;
                    if name_type == 0 && sni.is_none() && !name.is_empty() {
                        sni = std::str::from_utf8(name.b).ok().map(str::to_string);
                    }
                }
            }
            EXT_ALPN if !seen_alpn => {
                seen_alpn = true;
                let mut protocols = data.block16()?;
                while !protocols.is_empty() {
                    let p = protocols.block8()?;
                    if p.is_empty() {
                        return None;
                    }
                    alpn.push(String::from_utf8_lossy(p.b).into_owned());
                }
            }
            _ => {}
        }
    }
    Some((sni, alpn))
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
