//! HTTP mode: GET one path (default /health) on keep-alive connections, or on a new connection
//! per request, reading Content-Length, chunked or close-delimited bodies. Must never count a
//! non-2xx answer as a success.

use std::net::SocketAddr;

use super::error::RequestError;
use super::options::LoadOptions;
use super::runner::{Protocol, Reuse};
use super::stats::Sample;
use super::wire::{connect_tcp, BodyEnd, Framing, HttpConn};

pub struct Http {
    request: Vec<u8>,
    backend_header: Option<String>,
}

impl Http {
    pub fn new(opts: &LoadOptions) -> Self {
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringlb-load\r\nAccept: */*\r\n",
            opts.path(),
            opts.target
        );
        if opts.new_connection_per_request {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        Http {
            request: request.into_bytes(),
            backend_header: opts.backend_header.clone(),
        }
    }
}

impl Protocol for Http {
    type Conn = HttpConn;

    async fn connect(&self, addr: SocketAddr) -> Result<HttpConn, RequestError> {
        connect_tcp(addr).await.map(HttpConn::new)
    }

    async fn request(
        &self,
        conn: &mut HttpConn,
        sample: &mut Sample,
    ) -> Result<Reuse, RequestError> {
        let head = conn
            .exchange_head(&self.request, self.backend_header.as_deref(), sample)
            .await?;
        sample.backend = head.backend;
        let end = conn
            .read_body(head.framing, |data| {
                sample.bytes_in += data.len() as u64;
                Ok(true)
            })
            .await?;
        let reusable =
            end == BodyEnd::Complete && head.keep_alive && head.framing != Framing::Close;
        Ok(if reusable { Reuse::Keep } else { Reuse::Close })
    }
}
