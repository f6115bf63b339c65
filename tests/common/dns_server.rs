//! A DNS server for tests on UDP 127.0.0.1:0: answers A queries for one name with the
//! addresses the test sets (TTL 0, so every refresh reaches it), NODATA for its AAAA, NXDOMAIN
//! for any other name, or SERVFAIL for everything while failing. Counts the A queries it
//! answered, so a test can wait for refreshes instead of sleeping.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::DEADLINE;

#[derive(Default)]
struct State {
    /// None: answer SERVFAIL.
    answer: Option<Vec<Ipv4Addr>>,
    /// A queries for the name answered so far (SERVFAIL included).
    queries: usize,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    name: Name,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl DnsServer {
    /// Serves `name` (e.g. "gpu.dns.test") with `ips`.
    pub fn start(name: &str, ips: &[Ipv4Addr]) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind dns");
        let addr = socket.local_addr().unwrap();
        let name = Name::from_ascii(format!("{name}.")).expect("a name");
        let state = Arc::new((
            Mutex::new(State {
                answer: Some(ips.to_vec()),
                queries: 0,
            }),
            Condvar::new(),
        ));
        let (served, st) = (name.clone(), state.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(reply) = answer(&query, &served, &st) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer { addr, name, state }
    }

    /// From now on, A answers are `ips`.
    pub fn set(&self, ips: &[Ipv4Addr]) {
        self.state.0.lock().unwrap().answer = Some(ips.to_vec());
    }

    /// From now on, every answer is SERVFAIL.
    pub fn fail(&self) {
        self.state.0.lock().unwrap().answer = None;
    }

    pub fn queries(&self) -> usize {
        self.state.0.lock().unwrap().queries
    }

    /// Waits until `n` more A queries than `since` were answered.
    pub fn wait_queries(&self, since: usize, n: usize) {
        let until = Instant::now() + DEADLINE;
        let (m, cv) = &*self.state;
        let mut s = m.lock().unwrap();
        while s.queries < since + n {
            let now = Instant::now();
            assert!(now < until, "DNS queries: {} of {}", s.queries, since + n);
            s = cv.wait_timeout(s, until - now).unwrap().0;
        }
    }

    /// The name as a config writes it.
    pub fn name(&self) -> String {
        self.name.to_ascii().trim_end_matches('.').to_string()
    }
}

fn answer(query: &Message, name: &Name, state: &(Mutex<State>, Condvar)) -> Option<Vec<u8>> {
    let q = query.queries().first()?;
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .add_query(q.clone());
    let ours = q.name().to_lowercase() == name.to_lowercase();
    let (m, cv) = state;
    let mut s = m.lock().unwrap();
    match (&s.answer, ours, q.query_type()) {
        (None, _, _) => {
            reply.set_response_code(ResponseCode::ServFail);
        }
        (Some(_), false, _) => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        (Some(ips), true, RecordType::A) => {
            for ip in ips {
                reply.add_answer(Record::from_rdata(q.name().clone(), 0, RData::A(A(*ip))));
            }
        }
        (Some(_), true, _) => {}
    }
    if ours && q.query_type() == RecordType::A {
        s.queries += 1;
        cv.notify_all();
    }
    reply.to_vec().ok()
}
