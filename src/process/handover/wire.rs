//! The hand-over protocol on the wire: one JSON object per SOCK_SEQPACKET message (message
//! boundaries are kept by the kernel, and descriptors passed with SCM_RIGHTS arrive with the
//! message they were sent with, never split or merged with another).
//!
//! New process → old: `hello`; old → new: `offer` (listeners with their addresses and socket
//! counts, the admin address, the backend counts), then `sockets` messages carrying the
//! descriptors, or `refused`; new → old: `taken` (which sockets it accepts on now); old → new:
//! `draining`, then `counts` every ~500 ms until it exits. Any message out of that order is a
//! protocol error. This module must never keep a descriptor it received without owning it,
//! nor trust a count the peer sent without checking it against what arrived.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use socket2::Socket;

use super::HandoverError;

/// Bumped on any change of the messages; both sides must speak the same.
pub const PROTO: u32 = 1;
/// Descriptors per `sockets` message (the kernel takes at most 253 per message).
pub const FDS_PER_MSG: usize = 64;
/// Longest message accepted (an `offer` or `counts` with thousands of backends fits).
const MAX_MSG: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Msg {
    Hello {
        proto: u32,
        pid: u32,
        version: String,
    },
    Offer {
        pid: u32,
        listeners: Vec<Offered>,
        /// Where the old admin API listens; its socket follows (`sockets` with no listener).
        admin: Option<SocketAddr>,
        counts: Vec<PoolCounts>,
    },
    /// `count` descriptors of offered listener `listener` (by position in the offer), for the
    /// next workers in order; `None` = the admin API's socket.
    Sockets {
        listener: Option<usize>,
        count: usize,
    },
    /// The old process cannot hand over (it is draining, or a worker did not answer).
    Refused {
        reason: String,
    },
    /// The new process accepts on the first `n` sockets of offered listener `i`, for each
    /// `(i, n)`, and on the admin socket if `admin`.
    Taken {
        pid: u32,
        listeners: Vec<(usize, usize)>,
        admin: bool,
    },
    /// The old process stopped accepting; `streams` were live when it did.
    Draining {
        streams: u32,
    },
    Counts {
        pools: Vec<PoolCounts>,
    },
}

/// One listener as the old process offers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offered {
    pub name: String,
    /// As its config writes it (port 0 stays 0).
    pub bind: SocketAddr,
    /// Where it is bound.
    pub addr: SocketAddr,
    /// Sockets that follow, one per worker of the old process.
    pub sockets: usize,
}

/// Live streams of the old process per backend of one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolCounts {
    pub pool: String,
    pub backends: Vec<(SocketAddr, u32)>,
}

/// One end of a hand-over connection.
pub struct Conn {
    sock: Socket,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(sock: Socket) -> Conn {
        Conn {
            sock,
            buf: vec![0; MAX_MSG],
        }
    }

    /// A connected pair (tests).
    #[cfg(test)]
    pub fn pair() -> std::io::Result<(Conn, Conn)> {
        use socket2::{Domain, Type};
        let (a, b) = Socket::pair(Domain::UNIX, Type::SEQPACKET.cloexec(), None)?;
        Ok((Conn::new(a), Conn::new(b)))
    }

    /// Timeout of every later send and receive; None = wait for ever.
    pub fn set_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(t)?;
        self.sock.set_write_timeout(t)
    }

    /// Sends `msg` with `fds` (at most [`FDS_PER_MSG`]) attached.
    pub fn send(&self, msg: &Msg, fds: &[BorrowedFd]) -> Result<(), HandoverError> {
        let body = serde_json::to_vec(msg).map_err(|e| HandoverError::Protocol(e.to_string()))?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
        let iov = [IoSlice::new(&body)];
        sendmsg::<()>(
            self.sock.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| HandoverError::Io(std::io::Error::from(e)))?;
        Ok(())
    }

    /// The next message and the descriptors that came with it (owned, close-on-exec).
    pub fn recv(&mut self) -> Result<(Msg, Vec<OwnedFd>), HandoverError> {
        let mut space = nix::cmsg_space!([RawFd; FDS_PER_MSG]);
        let fd = self.sock.as_raw_fd();
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let got = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| HandoverError::Io(std::io::Error::from(e)))?;
        let mut fds = Vec::new();
        let cmsgs = got
            .cmsgs()
            .map_err(|_| HandoverError::Protocol("more descriptors than expected".into()))?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for r in raw {
                    #[allow(unsafe_code)]
                    // SAFETY: SCM_RIGHTS just installed `r` in this process's descriptor table
                    // for this message alone; nothing else knows or closes it, so it is ours.
                    fds.push(unsafe { OwnedFd::from_raw_fd(r) });
                }
            }
        }
        let (bytes, flags) = (got.bytes, got.flags);
        if bytes == 0 && fds.is_empty() {
            return Err(HandoverError::Closed);
        }
        if flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(HandoverError::Protocol(format!(
                "a message longer than {MAX_MSG} bytes"
            )));
        }
        let msg = serde_json::from_slice(&self.buf[..bytes])
            .map_err(|e| HandoverError::Protocol(format!("unreadable message: {e}")))?;
        Ok((msg, fds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn a_listening_socket_passed_over_accepts_what_waits_in_its_queue() {
        let (a, mut b) = Conn::pair().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A client completes its handshake before the socket is passed: it waits in the queue.
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"queued before the hand-over").unwrap();
        let msg = Msg::Sockets {
            listener: Some(0),
            count: 1,
        };
        a.send(&msg, &[listener.as_fd()]).unwrap();
        drop(listener); // the sender's copy goes; the kernel socket lives on in the receiver's
        let (got, mut fds) = b.recv().unwrap();
        assert_eq!(got, msg);
        assert_eq!(fds.len(), 1);
        let passed = TcpListener::from(fds.remove(0));
        assert_eq!(passed.local_addr().unwrap(), addr);
        let (mut served, _) = passed.accept().unwrap();
        let mut buf = [0u8; 27];
        served.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"queued before the hand-over");
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", passed.as_raw_fd())).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
        let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
        assert!(
            flags & libc::O_CLOEXEC as u32 != 0,
            "received descriptors are close-on-exec"
        );
    }

    #[test]
    fn messages_keep_their_boundaries_and_a_closed_peer_is_told() {
        let (a, mut b) = Conn::pair().unwrap();
        let counts = Msg::Counts {
            pools: vec![PoolCounts {
                pool: "p".into(),
                backends: vec![("127.0.0.1:9001".parse().unwrap(), 200)],
            }],
        };
        a.send(&Msg::Draining { streams: 3 }, &[]).unwrap();
        a.send(&counts, &[]).unwrap();
        assert_eq!(b.recv().unwrap().0, Msg::Draining { streams: 3 });
        assert_eq!(b.recv().unwrap().0, counts);
        drop(a);
        assert!(matches!(b.recv(), Err(HandoverError::Closed)));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let (a, mut b) = Conn::pair().unwrap();
        let iov = [IoSlice::new(b"not json")];
        sendmsg::<()>(a.sock.as_raw_fd(), &iov, &[], MsgFlags::empty(), None).unwrap();
        let e = b.recv().unwrap_err().to_string();
        assert!(e.contains("unreadable message"), "{e}");
    }
}
