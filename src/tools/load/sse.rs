//! SSE mode: POST an OpenAI-style completion with `"stream": true` on a keep-alive HTTP/1.1
//! connection and count `data:` events until `data: [DONE]`. Must never accept a response as a
//! stream unless it is a 2xx `text/event-stream` that reached `[DONE]`.

use std::net::SocketAddr;

use super::error::RequestError;
use super::event_stream::EventStream;
use super::lengths::Lengths;
use super::options::LoadOptions;
use super::runner::{Protocol, Reuse};
use super::stats::Sample;
use super::wire::{connect_tcp, BodyEnd, Framing, HttpConn};

pub struct Sse {
    /// The request of every stream, when they all ask for the same `max_tokens`.
    fixed: Option<Vec<u8>>,
    opts: LoadOptions,
    lengths: Lengths,
    backend_header: Option<String>,
}

impl Sse {
    pub fn new(opts: &LoadOptions) -> Self {
        let lengths = opts.lengths();
        Sse {
            fixed: lengths.fixed().map(|n| build_request(opts, n)),
            opts: opts.clone(),
            lengths,
            backend_header: opts.backend_header.clone(),
        }
    }
}

fn build_request(opts: &LoadOptions, max_tokens: u64) -> Vec<u8> {
    let mut body = serde_json::json!({
        "prompt": opts.prompt,
        "max_tokens": max_tokens,
        "stream": true,
    });
    if let Some(model) = &opts.model {
        body["model"] = serde_json::Value::String(model.clone());
    }
    let body = body.to_string();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringlb-load\r\nAccept: text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        opts.path(),
        opts.target,
        body.len()
    );
    if opts.new_connection_per_request {
        request.push_str("Connection: close\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&body);
    request.into_bytes()
}

impl Protocol for Sse {
    type Conn = HttpConn;

    async fn connect(&self, addr: SocketAddr) -> Result<HttpConn, RequestError> {
        connect_tcp(addr).await.map(HttpConn::new)
    }

    async fn request(
        &self,
        conn: &mut HttpConn,
        sample: &mut Sample,
    ) -> Result<Reuse, RequestError> {
        let max_tokens = self.lengths.for_request(sample.seq);
        sample.max_tokens = Some(max_tokens);
        let drawn;
        let request = match &self.fixed {
            Some(request) => request,
            None => {
                drawn = build_request(&self.opts, max_tokens);
                &drawn
            }
        };
        let head = conn
            .exchange_head(request, self.backend_header.as_deref(), sample)
            .await?;
        let is_sse = head
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if !is_sse {
            return Err(RequestError::protocol(format!(
                "Content-Type {:?} is not text/event-stream",
                head.content_type.as_deref().unwrap_or("")
            )));
        }
        sample.backend = head.backend;
        let mut events = EventStream::new();
        // A close-delimited stream cannot be reused anyway: stop at [DONE] rather than wait
        // for a server that is slow to close.
        let stop_at_done = head.framing == Framing::Close;
        let end = conn
            .read_body(head.framing, |data| {
                sample.bytes_in += data.len() as u64;
                let fed = events.feed(data)?;
                sample.add_tokens(fed.tokens);
                Ok(!(fed.done && stop_at_done))
            })
            .await;
        let end = match end {
            Ok(end) => end,
            Err(err) if events.is_done() => return Err(err),
            Err(err) => {
                return Err(RequestError::new(
                    err.kind,
                    format!("{} ({} events, no [DONE])", err.detail, sample.tokens),
                ))
            }
        };
        if !events.is_done() {
            let detail = format!("stream ended after {} events without [DONE]", sample.tokens);
            return Err(if head.framing == Framing::Close {
                RequestError::closed(detail)
            } else {
                RequestError::protocol(detail)
            });
        }
        let reusable =
            end == BodyEnd::Complete && head.keep_alive && head.framing != Framing::Close;
        Ok(if reusable { Reuse::Keep } else { Reuse::Close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::load::{Limit, Mode};

    fn body_of(request: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(request).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn each_request_carries_its_drawn_max_tokens() {
        let mut opts = LoadOptions::new(Mode::Sse, "h:1", 1, Limit::Requests(1));
        opts.max_tokens_dist = Some("lognormal:median=300,sigma=1.5,max=5000".parse().unwrap());
        opts.seed = 5;
        let sse = Sse::new(&opts);
        assert!(sse.fixed.is_none());
        for seq in 0..50 {
            let n = sse.lengths.for_request(seq);
            let body = body_of(&build_request(&opts, n));
            assert_eq!(body["max_tokens"], n);
            assert_eq!(body["stream"], true);
        }
        opts.max_tokens_dist = None;
        let sse = Sse::new(&opts);
        let fixed = sse.fixed.as_deref().unwrap();
        assert_eq!(body_of(fixed)["max_tokens"], u64::from(opts.max_tokens));
    }
}
