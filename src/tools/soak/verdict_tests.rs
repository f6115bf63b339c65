//! Tests of the stream verdicts: every way a stream can end, judged.

use super::*;
use crate::tools::soak::header::Header;
use crate::tools::soak::pattern::Digest;
use crate::tools::soak::record::SetupFailure;
use crate::tools::soak::shared::BackendReport;

fn header(kind: Kind) -> Header {
    Header {
        id: 3,
        kind,
        stall: false,
        seed: 11,
        up_len: 1000,
        down_len: if kind == Kind::Echo { 1000 } else { 700 },
    }
}

fn pat(h: &Header) -> (u64, u64) {
    let p = Plan::derive(h);
    (p.up.pattern, p.down.pattern)
}

fn side(sent: Digest, recv: Digest, fin: bool, eof: bool, end: End) -> SideOutcome {
    SideOutcome {
        sent,
        recv,
        wrote_fin: fin,
        read_eof: eof,
        max_gap_ms: 0,
        end,
    }
}

fn cut(cause: Cause, at_ms: u64) -> End {
    End::Cut {
        cause,
        at_ms,
        detail: "test".into(),
    }
}

fn record(h: Header, client: SideOutcome, backend: Option<SideOutcome>) -> StreamRecord {
    StreamRecord {
        header: h,
        client: Ok(client),
        connect_started_ms: Some(100),
        backend: backend.map(|side| BackendReport { backend: 0, side }),
    }
}

/// A stream that went through whole both ways.
fn whole(kind: Kind) -> (Header, SideOutcome, SideOutcome) {
    let h = header(kind);
    let (up, down) = pat(&h);
    let (u, d) = (prefix_digest(up, h.up_len), prefix_digest(down, h.down_len));
    let c = side(u, d, true, true, End::Completed);
    let b = side(d, u, true, true, End::Completed);
    (h, c, b)
}

fn failed_check(j: &Judged) -> StreamCheck {
    match &j.verdict {
        Verdict::Failed(f) => f[0].check,
        v => panic!("expected a failure, got {v:?}"),
    }
}

#[test]
fn complete_equal_streams_are_verified_with_their_bytes() {
    for kind in [Kind::ClientHalfClose, Kind::BackendHalfClose, Kind::Echo] {
        let (h, c, b) = whole(kind);
        let j = judge(&record(h, c, Some(b)), &[]);
        assert_eq!(j.verdict, Verdict::Verified, "{kind:?}");
        assert_eq!(
            (j.up_verified, j.down_verified),
            (Some(1000), Some(h.down_len))
        );
    }
}

#[test]
fn a_changed_byte_or_a_short_stream_fails_the_hashes() {
    let (h, mut c, b) = whole(Kind::ClientHalfClose);
    c.recv.hash[0] ^= 1;
    assert_eq!(
        failed_check(&judge(&record(h, c, Some(b.clone())), &[])),
        StreamCheck::Hashes
    );
    let (h, mut c, mut b) = whole(Kind::ClientHalfClose);
    let (_, down) = pat(&h);
    b.sent = prefix_digest(down, 10);
    c.recv = b.sent;
    assert_eq!(
        failed_check(&judge(&record(h, c, Some(b)), &[])),
        StreamCheck::Hashes
    );
}

#[test]
fn an_unexplained_cut_fails_the_streams_check() {
    let (h, mut c, mut b) = whole(Kind::BackendHalfClose);
    let (_, down) = pat(&h);
    c.recv = prefix_digest(down, 100);
    c.read_eof = false;
    c.end = cut(Cause::Reset, 5_000);
    b.end = cut(Cause::Reset, 5_000);
    let j = judge(&record(h, c.clone(), Some(b)), &[]);
    assert_eq!(failed_check(&j), StreamCheck::Streams);
    let kill = [KillMark {
        backend: 1,
        at_ms: 4_000,
        closed_ms: 4_200,
    }];
    let unclaimed = record(h, c, None);
    assert_eq!(
        judge(&unclaimed, &kill).verdict,
        Verdict::Cut(CutReason::BackendKilledBeforeHeader)
    );
    let mut queued = unclaimed.clone();
    queued.connect_started_ms = Some(4_100);
    assert_eq!(
        judge(&queued, &kill).verdict,
        Verdict::Cut(CutReason::BackendKilledBeforeHeader),
        "connected after the kill began, before its listener closed: may have been in its queue"
    );
    let mut late = unclaimed.clone();
    late.connect_started_ms = Some(4_500);
    assert_eq!(
        failed_check(&judge(&late, &kill)),
        StreamCheck::Streams,
        "connected after the killed backend's listener closed"
    );
    let mut old = unclaimed.clone();
    old.header.id = 9;
    if let Ok(c) = old.client.as_mut() {
        c.end = cut(Cause::Reset, 4_000 + KILL_ATTRIBUTION_MS + 1);
    }
    assert_eq!(
        failed_check(&judge(&old, &kill)),
        StreamCheck::Streams,
        "kill too long before"
    );
}

#[test]
fn kills_excuse_cuts_but_not_corruption() {
    let (h, mut c, mut b) = whole(Kind::ClientHalfClose);
    let (_, down) = pat(&h);
    b.end = End::Killed;
    b.wrote_fin = false;
    c.recv = prefix_digest(down, 300);
    c.read_eof = false;
    c.end = cut(Cause::Reset, 2_000);
    let j = judge(&record(h, c.clone(), Some(b.clone())), &[]);
    assert_eq!(j.verdict, Verdict::Cut(CutReason::BackendKilled));
    let kill = [KillMark {
        backend: 0,
        at_ms: 1_500,
        closed_ms: 1_500,
    }];
    let j = judge(&record(h, c.clone(), None), &kill);
    assert_eq!(
        j.verdict,
        Verdict::Cut(CutReason::BackendKilledBeforeHeader)
    );
    c.recv.hash[5] ^= 0x40;
    assert_eq!(
        failed_check(&judge(&record(h, c.clone(), Some(b.clone())), &[])),
        StreamCheck::Hashes
    );
    c.recv = prefix_digest(down, 300);
    c.read_eof = true;
    c.end = End::Completed;
    let j = judge(&record(h, c, Some(b)), &[]);
    assert_eq!(
        failed_check(&j),
        StreamCheck::ResetPropagation,
        "kill arrived as a FIN"
    );
}

#[test]
fn a_client_reset_must_reach_the_backend_as_a_reset() {
    let h = header(Kind::ClientReset);
    let (up, down) = pat(&h);
    let c = side(
        prefix_digest(up, 400),
        prefix_digest(down, 50),
        false,
        false,
        End::ResetByUs,
    );
    let mut b = side(
        prefix_digest(down, 50),
        prefix_digest(up, 400),
        false,
        false,
        cut(Cause::Reset, 9),
    );
    assert_eq!(
        judge(&record(h, c.clone(), Some(b.clone())), &[]).verdict,
        Verdict::Cut(CutReason::ClientReset)
    );
    b.end = cut(Cause::Timeout, 9);
    assert_eq!(
        failed_check(&judge(&record(h, c.clone(), Some(b.clone())), &[])),
        StreamCheck::ResetPropagation
    );
    b.read_eof = true;
    b.end = End::Completed;
    assert_eq!(
        failed_check(&judge(&record(h, c.clone(), Some(b)), &[])),
        StreamCheck::ResetPropagation
    );
    assert_eq!(
        failed_check(&judge(&record(h, c, None), &[])),
        StreamCheck::Streams
    );
}

#[test]
fn a_backend_reset_must_reach_the_client_as_a_reset() {
    let h = header(Kind::BackendReset);
    let (up, down) = pat(&h);
    let b = side(
        prefix_digest(down, 200),
        prefix_digest(up, 1000),
        false,
        true,
        End::ResetByUs,
    );
    let mut c = side(
        prefix_digest(up, 1000),
        prefix_digest(down, 200),
        true,
        false,
        cut(Cause::Reset, 1),
    );
    let j = judge(&record(h, c.clone(), Some(b.clone())), &[]);
    assert_eq!(j.verdict, Verdict::Cut(CutReason::BackendReset));
    assert_eq!(
        j.up_verified,
        Some(1000),
        "the direction that completed still counts"
    );
    c.read_eof = true;
    c.end = End::Completed;
    assert_eq!(
        failed_check(&judge(&record(h, c.clone(), Some(b.clone())), &[])),
        StreamCheck::ResetPropagation
    );
    // A timeout is a lost propagation; one whose reset the kernel shows it dropped is
    // counted apart.
    c.read_eof = false;
    c.end = cut(Cause::Timeout, 1);
    assert_eq!(
        failed_check(&judge(&record(h, c.clone(), Some(b.clone())), &[])),
        StreamCheck::ResetPropagation
    );
    c.end = cut(Cause::ResetLost, 1);
    assert_eq!(
        judge(&record(h, c, Some(b)), &[]).verdict,
        Verdict::Cut(CutReason::ResetLostInKernel)
    );
}

#[test]
fn a_client_that_cannot_set_up_fails_unless_a_kill_reset_it() {
    let rec = StreamRecord {
        header: header(Kind::Echo),
        client: Err(SetupFailure {
            cause: Cause::Reset,
            at_ms: 4_000,
            detail: "header write: connection reset".into(),
        }),
        connect_started_ms: Some(3_000),
        backend: None,
    };
    assert_eq!(failed_check(&judge(&rec, &[])), StreamCheck::Streams);
    let kill = [KillMark {
        backend: 2,
        at_ms: 3_500,
        closed_ms: 3_500,
    }];
    let j = judge(&rec, &kill);
    assert_eq!(
        j.verdict,
        Verdict::Cut(CutReason::BackendKilledBeforeHeader)
    );
    let mut refused = rec.clone();
    refused.client = Err(SetupFailure {
        cause: Cause::Io,
        at_ms: 4_000,
        detail: "connect: connection refused".into(),
    });
    assert_eq!(
        failed_check(&judge(&refused, &kill)),
        StreamCheck::Streams,
        "ringlb refused"
    );
}
