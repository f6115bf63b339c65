//! Server-sent-event framing of tokens inside HTTP/1.1 chunked encoding.
//!
//! Each token is one `data: {json}\n\n` event shaped like an OpenAI completions chunk; the
//! stream ends with `data: [DONE]\n\n` and the zero-length chunk, so the connection stays
//! usable for the next request. Must never emit an event that is not valid JSON or UTF-8.

use serde_json::json;

/// The event that ends a stream, as OpenAI-compatible servers send it.
pub(crate) const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// The chunk that ends a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `data` as one chunk (empty data appends nothing: that would end the body).
pub(crate) fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// One completions chunk as JSON; `last` sets `finish_reason` to `"length"`.
pub(crate) fn completion_chunk(id: &str, model: &str, text: &str, last: bool) -> String {
    json!({
        "id": id,
        "object": "text_completion",
        "model": model,
        "choices": [{
            "text": text,
            "index": 0,
            "logprobs": null,
            "finish_reason": if last { Some("length") } else { None },
        }],
    })
    .to_string()
}

/// Appends one SSE event carrying `payload`.
pub(crate) fn push_event(out: &mut Vec<u8>, payload: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_and_event_framing() {
        let mut events = Vec::new();
        push_event(&mut events, &completion_chunk("c1", "m", "tok0 ", true));
        let text = String::from_utf8(events.clone()).unwrap();
        let json = text
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["choices"][0]["text"], "tok0 ");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        let mut out = Vec::new();
        push_chunk(&mut out, &events);
        push_chunk(&mut out, b"");
        assert!(out.starts_with(format!("{:x}\r\n", events.len()).as_bytes()));
        assert!(out.ends_with(b"\n\n\r\n"));
        assert_eq!(
            out.len(),
            events.len() + format!("{:x}", events.len()).len() + 4
        );
    }
}
