//! TCP echo mode: write `--message-size` random bytes, read the same number back and compare.
//! Random content per request means a balancer that crossed two streams is caught as a
//! mismatch. Must never report an echo as good unless every byte matched.

use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{ErrorKind, RequestError};
use super::options::LoadOptions;
use super::runner::{Protocol, Reuse};
use super::stats::Sample;
use super::wire::connect_tcp;

pub struct Echo {
    size: usize,
}

pub struct EchoConn {
    stream: TcpStream,
    rng: StdRng,
    sent: Vec<u8>,
    received: Vec<u8>,
}

impl Echo {
    pub fn new(opts: &LoadOptions) -> Self {
        Echo {
            size: opts.message_size,
        }
    }
}

impl Protocol for Echo {
    type Conn = EchoConn;

    async fn connect(&self, addr: SocketAddr) -> Result<EchoConn, RequestError> {
        Ok(EchoConn {
            stream: connect_tcp(addr).await?,
            rng: StdRng::from_entropy(),
            sent: vec![0; self.size],
            received: vec![0; self.size],
        })
    }

    async fn request(
        &self,
        conn: &mut EchoConn,
        sample: &mut Sample,
    ) -> Result<Reuse, RequestError> {
        let EchoConn {
            stream,
            rng,
            sent,
            received,
        } = conn;
        rng.fill_bytes(sent);
        stream
            .write_all(sent)
            .await
            .map_err(|e| RequestError::io("send message", &e))?;
        sample.bytes_out += sent.len() as u64;
        let mut got = 0;
        while got < received.len() {
            let n = stream
                .read(&mut received[got..])
                .await
                .map_err(|e| RequestError::io("read echo", &e))?;
            if n == 0 {
                return Err(RequestError::closed(format!(
                    "connection closed after {got} of {} echoed bytes",
                    received.len()
                )));
            }
            sample.mark_first_byte();
            sample.bytes_in += n as u64;
            got += n;
        }
        if let Some(at) = sent.iter().zip(received.iter()).position(|(a, b)| a != b) {
            return Err(RequestError::new(
                ErrorKind::Mismatch,
                format!(
                    "echo differs from the message at byte {at} of {}",
                    sent.len()
                ),
            ));
        }
        Ok(Reuse::Keep)
    }
}
