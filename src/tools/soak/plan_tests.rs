//! Tests of the stream plans and the pacing distribution.

use super::*;

fn header(kind: Kind, up: u64, down: u64, seed: u64) -> Header {
    Header {
        id: 1,
        kind,
        stall: true,
        seed,
        up_len: up,
        down_len: if kind == Kind::Echo { up } else { down },
    }
}

#[test]
fn plans_are_a_function_of_the_header() {
    for kind in Kind::ALL {
        let h = header(kind, 100_000, 50_000, 77);
        assert_eq!(Plan::derive(&h), Plan::derive(&h));
        assert_ne!(Plan::derive(&h), Plan::derive(&Header { seed: 78, ..h }));
    }
}

#[test]
fn cut_points_and_gates_lie_inside_the_stream() {
    for seed in 0..500 {
        for kind in Kind::ALL {
            let h = header(kind, seed * 37 % 5000, seed * 91 % 7000, seed);
            let p = Plan::derive(&h);
            if let Some(at) = p.client_reset_at {
                assert!(
                    at < h.up_len.max(1),
                    "{kind:?} reset at {at} of {}",
                    h.up_len
                );
            }
            if let Some(at) = p.backend_reset_at {
                assert!(at < h.down_len.max(1));
            }
            assert!(p.client_gate.is_none_or(|g| g <= h.up_len));
            assert!(p.backend_gate.is_none_or(|g| g <= h.down_len));
            let s = p.stall.expect("stall flag set");
            assert!(s.at <= h.down_len / 2);
            assert!((STALL_MIN..=STALL_MAX).contains(&s.pause));
            assert_eq!(p.echo, kind == Kind::Echo);
            if p.echo {
                assert_eq!(p.down.pattern, p.up.pattern);
            }
        }
    }
}

#[test]
fn only_short_directions_are_token_paced() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut seen = [0u32; 3];
    for i in 0..20_000u64 {
        let len = (i * 7919) % (TOKEN_MAX_LEN * 4);
        let p = Pacing::choose(&mut rng, len);
        if len > TOKEN_MAX_LEN {
            assert_ne!(p, Pacing::Tokens, "{len} bytes token-paced");
        }
        seen[p as usize] += 1;
    }
    assert!(
        seen.iter().all(|&n| n > 1000),
        "every pacing drawn: {seen:?}"
    );
}

/// Walks a pacer over `len` bytes: (writes, total pause).
fn walk(pacing: Pacing, len: u64, seed: u64) -> (u64, Duration) {
    let mut pacer = Pacer::new(pacing, seed);
    let (mut left, mut writes, mut paused) = (len, 0, Duration::ZERO);
    while left > 0 {
        let (n, pause) = pacer.step(left);
        assert!(n >= 1 && n as u64 <= left && n <= CHUNK);
        if pacing == Pacing::Tokens {
            assert!(n <= 64);
        }
        left -= n as u64;
        writes += 1;
        paused += pause;
    }
    (writes, paused)
}

#[test]
fn pacers_write_exactly_the_length_in_bounded_time() {
    assert_eq!(walk(Pacing::Bulk, 4 << 20, 1), (256, Duration::ZERO));
    for seed in 0..50 {
        let (_, tokens) = walk(Pacing::Tokens, TOKEN_MAX_LEN, seed);
        assert!(tokens < Duration::from_secs(8), "token pauses {tokens:?}");
        let (_, bursty) = walk(Pacing::Bursty, 4 << 20, seed);
        assert!(bursty < Duration::from_secs(6), "bursty pauses {bursty:?}");
        assert!(bursty > Duration::ZERO);
    }
}
