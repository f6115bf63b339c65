//! BufRing: stocking, growth, trimming, and the epoll driver's stand-in for the kernel head.

use super::*;

#[test]
fn the_ring_is_stocked_as_needed_and_cold_buffers_are_given_back() {
    let mut r = BufRing::new(64, 4096, 0).unwrap();
    assert_eq!(
        (r.available(), r.in_use(), r.warm()),
        (32, 0, 32),
        "32 stocked"
    );
    for bid in 0..32 {
        r.taken(bid);
    }
    assert_eq!(r.available(), 0, "the kernel took the whole stock");
    assert!(r.grow(), "the reserve restocks the ring");
    assert_eq!((r.available(), r.warm()), (32, 64));
    for bid in 0..32 {
        r.recycle(bid);
    }
    assert_eq!(
        (r.available(), r.in_use()),
        (64, 0),
        "below target: back in the ring"
    );
    assert!(!r.grow(), "nothing left to add");
    r.trim(false);
    r.trim(false);
    // Demand fell to nothing: the target is back at the minimum, so buffers the kernel
    // hands back now go to the reserve, and the reserve's cold ones are discarded.
    for bid in 0..40 {
        r.taken(bid);
    }
    for bid in 0..40 {
        r.recycle(bid);
    }
    assert_eq!(r.available(), 32, "refilled only up to the target");
    assert_eq!(r.warm(), 64);
    r.trim(false);
    assert_eq!(
        r.warm(),
        64 - (32 - KEEP_HOT as u32),
        "all but the hot few discarded"
    );
    r.trim(true);
    assert_eq!(
        r.available(),
        32,
        "discarding never takes a buffer out of the ring"
    );
}

#[test]
fn a_ring_smaller_than_the_minimum_stock_is_stocked_whole() {
    let mut r = BufRing::new(16, 4096, 0).unwrap();
    assert_eq!(r.available(), 16);
    r.trim(true);
    assert!(!r.grow());
    assert_eq!(r.available(), 16);
}

#[test]
fn the_epoll_stand_in_for_the_kernel_takes_buffers_in_ring_order() {
    let mut r = BufRing::new(16, 4096, 0).unwrap();
    let mut seen = Vec::new();
    while let Some(bid) = r.next_free() {
        r.consume();
        r.taken(bid);
        seen.push(bid);
    }
    assert_eq!(
        seen,
        (0..16).collect::<Vec<u16>>(),
        "every stocked buffer, once"
    );
    assert_eq!(r.available(), 0);
    r.recycle(3);
    assert_eq!(
        r.next_free(),
        Some(3),
        "a recycled buffer is the next one filled"
    );
}
