//! `balance = "least_load"` against mock GPU engines scraped over `/metrics`
//! (`[pool.engine_metrics]`): load from clients that do not pass through this ringlb (the mock's
//! phantom streams) moves new streams elsewhere; without fresh readings the pick is plain least
//! connections. Several ringlb instances in front of one fleet are in `multi_instance.rs`. Real processes and sockets; every
//! wait has a deadline.

mod common;

use common::engines::*;
use common::process::Proc;

#[test]
fn external_load_on_one_engine_sends_new_streams_to_the_others() {
    let (a, b) = (gpu("a", 16, 6), gpu("b", 16, 0));
    let lb = Proc::run(
        "least-load",
        &config("least_load", "/metrics", &[&a, &b]),
        &[],
    );
    let api = lb.listener("api");
    // The scrapes must have landed before the first pick counts them.
    wait_fresh(admin_addr(&lb), 2);
    let streams = open_paced(&[api], 6);
    assert_eq!(settled(&[&a, &b], 12.0), vec![6.0, 6.0], "all six to b");
    drop(streams);
}

#[test]
fn without_fresh_readings_least_load_is_least_connections() {
    let (a, b) = (gpu("a", 16, 6), gpu("b", 16, 0));
    // A path the engines do not serve: no reading is ever fresh.
    let lb = Proc::run(
        "least-load-stale",
        &config("least_load", "/nope", &[&a, &b]),
        &[],
    );
    let api = lb.listener("api");
    let streams = open_paced(&[api], 6);
    assert_eq!(
        settled(&[&a, &b], 12.0),
        vec![9.0, 3.0],
        "3 and 3 of ours, blind to a's 6"
    );
    drop(streams);
}
