//! The connection state machine's decisions, without a ring: what is due in each state.

use super::*;

fn relaying() -> Conn {
    let fd = |_| -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let mut c = Conn::new(1, fd(0), 0, 0, 0);
    c.halves[1].fd = Some(fd(1));
    c.phase = Phase::Relaying;
    c
}

fn ring(bid: u16, len: u32) -> Chunk {
    Chunk {
        mem: Mem::Ring(bid),
        offset: 0,
        len,
    }
}

fn queue(c: &mut Conn, side: Side, chunk: Chunk) {
    let h = c.half(side);
    h.outq.push_back(chunk);
    h.outq_bytes += chunk.len;
}

#[test]
fn a_quiet_stream_reads_multishot_and_a_busy_one_single() {
    let mut c = relaying();
    assert_eq!(c.recv_plan(Side::Backend, 1000), Some(RecvPlan::Multi));
    queue(&mut c, Side::Client, ring(0, 100));
    c.half(Side::Client).send = Send::Now;
    c.half(Side::Client).inflight = 100;
    assert_eq!(c.recv_plan(Side::Backend, 1000), Some(RecvPlan::Single));
    assert!(!c.multishot_overruns(Side::Backend), "not armed");
    c.half(Side::Backend).recv = Recv::Multi;
    assert!(
        !c.multishot_overruns(Side::Backend),
        "only the send in flight"
    );
    queue(&mut c, Side::Client, ring(1, 100));
    assert!(c.multishot_overruns(Side::Backend), "bytes behind the send");
    assert_eq!(c.recv_plan(Side::Backend, 1000), None, "already armed");
    c.half(Side::Backend).recv = Recv::Off;
    c.half(Side::Client).outq.clear();
    c.half(Side::Client).outq_bytes = 0;
    c.half(Side::Client).send = Send::Idle;
    c.half(Side::Backend).bulk = true;
    assert_eq!(
        c.recv_plan(Side::Backend, 1000),
        Some(RecvPlan::Single),
        "a bulk sender is read one buffer at a time"
    );
}

#[test]
fn backpressure_stops_reading_at_max_unsent() {
    let mut c = relaying();
    queue(&mut c, Side::Client, ring(0, 600));
    queue(&mut c, Side::Client, ring(1, 400));
    assert_eq!(c.recv_plan(Side::Backend, 1000), None);
    assert_eq!(c.recv_plan(Side::Backend, 1001), Some(RecvPlan::Single));
    assert_eq!(c.recv_plan(Side::Client, 1000), Some(RecvPlan::Multi));
    c.half(Side::Client).recv = Recv::Eof;
    assert_eq!(c.recv_plan(Side::Client, 1000), None, "finished");
}

#[test]
fn a_blocked_or_busy_direction_spills_small_bytes_and_caps_buffers() {
    let mut c = relaying();
    let h = c.half(Side::Client);
    assert!(!h.spills(100), "idle: send from the receive buffer");
    h.send = Send::Now;
    h.outq.push_back(ring(0, 100_000));
    assert!(h.spills(SMALL_COPY), "small bytes behind a send are copied");
    assert!(!h.spills(SMALL_COPY + 1), "bulk keeps its buffer");
    h.outq.push_back(ring(1, 100_000));
    assert!(h.spills(100_000), "at most MAX_RING_CHUNKS buffers queued");
    h.outq.clear();
    h.send = Send::Idle;
    h.blocked = true;
    assert!(
        h.spills(100_000),
        "a blocked direction holds no receive buffer"
    );
    h.blocked = false;
    h.send = Send::Waiting;
    h.outq.push_back(Chunk {
        mem: Mem::Spill(0),
        offset: 0,
        len: 100,
    });
    assert!(
        h.spills(100_000),
        "never a receive buffer behind a send that waits for the peer"
    );
    h.send = Send::Now;
    h.outq.push_front(ring(2, 100_000));
    assert!(h.spills(100_000), "nor behind a spill block queued");
}

#[test]
fn fin_is_passed_on_once_drained_and_both_fins_finish() {
    let mut c = relaying();
    queue(&mut c, Side::Backend, ring(0, 10));
    c.half(Side::Client).recv = Recv::Eof;
    assert!(c.half_closed());
    assert!(!c.shutdown_due(Side::Backend), "bytes still queued");
    c.half(Side::Backend).outq.clear();
    assert!(c.shutdown_due(Side::Backend));
    c.half(Side::Backend).shut = Shut::Done;
    assert!(!c.finished());
    c.half(Side::Backend).recv = Recv::Eof;
    c.half(Side::Client).shut = Shut::Done;
    assert!(c.finished());
}

#[test]
fn half_closed_streams_use_the_shorter_idle_limit() {
    let mut c = relaying();
    c.idle_timeout_ms = 3_600_000;
    c.half_close_timeout_ms = 60_000;
    assert_eq!(c.idle_limit_ms(), 3_600_000);
    c.half(Side::Backend).recv = Recv::Eof;
    assert_eq!(c.idle_limit_ms(), 60_000);
    c.idle_timeout_ms = 1000;
    assert_eq!(
        c.idle_limit_ms(),
        1000,
        "never longer than the idle timeout"
    );
}

#[test]
fn nothing_is_due_outside_relaying() {
    let mut c = relaying();
    queue(&mut c, Side::Client, ring(0, 10));
    c.phase = Phase::Closing;
    assert_eq!(c.send_plan(Side::Client), None);
    assert_eq!(c.recv_plan(Side::Backend, 1000), None);
    assert!(c.holds_bytes());
}

/// An idle relayed connection costs its slab entry (plus a timer entry and a generation):
/// keep it far below the 1 KiB per idle connection target. (320 until the access log's
/// counters, connection id, close reason and the idle timer's acknowledgement sample; 352
/// until the replay copy and the first-byte timeout; 360 until the peek state.)
#[test]
fn a_connection_slot_stays_small() {
    let entry = std::mem::size_of::<Conn>();
    assert!(entry <= 368, "Conn grew to {entry} bytes");
}
