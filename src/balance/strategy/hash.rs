//! Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing
//! with Bounded Loads", 2018): a client's key (its IP, or IP and port) is hashed onto a ring of
//! virtual nodes, and walking the ring from that point the first backend that is usable and
//! under its capacity takes it. Capacity = ceil(factor * (pool active + 1) * share), share =
//! effective weight / total effective weight of the usable backends. So a client keeps landing
//! on the backend that holds its KV cache, unless that backend already carries `factor` times
//! its fair share; then it spills to the ring's next backend, which is again stable per key.
//! Removing one of N backends moves only the keys it owned (about 1/N).
//!
//! The hash is fixed and written here (FNV-1a 64 over the bytes, then murmur3's fmix64
//! finaliser for avalanche) so that placement never changes between versions or processes:
//! two balancers, or one restarted, send a client to the same backend. Never change it.

use std::net::SocketAddr;

use super::{first_available, rng, Strategy};
use crate::balance::backend::{Backend, PickCtx};
use crate::balance::spec::HashKey;

/// Virtual nodes per unit of (gcd-reduced) weight: enough that each backend's share of the
/// ring is within a few percent of its weight share.
const POINTS_PER_WEIGHT: u64 = 160;
/// Ring size cap (12 bytes a point: under 400 KiB per pool and tier); larger weight sums are
/// scaled down to it, every weighted backend keeping at least one point.
const MAX_RING_POINTS: u64 = 32_768;
/// Ring positions walked before falling back to a pass over the backends in pool order. A walk
/// that long only happens when nearly everything is full, down or excluded.
const MAX_WALK: usize = 256;

/// The ring of one tier and its balance factor.
#[derive(Debug)]
pub(crate) struct Hash {
    /// Sorted point hashes; `owners[i]` is the backend position of `points[i]`.
    points: Box<[u64]>,
    owners: Box<[u32]>,
    factor: f64,
}

impl Hash {
    pub(crate) fn new(backends: &[Backend], factor: f64) -> Self {
        let mut ring: Vec<(u64, u32)> = Vec::new();
        for (idx, (backend, count)) in backends.iter().zip(point_counts(backends)).enumerate() {
            let owner = u32::try_from(idx).unwrap_or(u32::MAX);
            for replica in 0..count {
                let mut h = Fnv::new();
                write_addr(&mut h, backend.addr, true);
                h.write(&replica.to_le_bytes());
                ring.push((h.finish(), owner));
            }
        }
        ring.sort_unstable();
        // NaN and values below 1 would leave no backend under capacity.
        let factor = if factor >= 1.0 { factor } else { 1.0 };
        Self {
            points: ring.iter().map(|p| p.0).collect(),
            owners: ring.iter().map(|p| p.1).collect(),
            factor,
        }
    }
}

/// Points per backend: proportional to the gcd-reduced weight, capped in total.
fn point_counts(backends: &[Backend]) -> Vec<u64> {
    let weights: Vec<u64> = backends.iter().map(|b| u64::from(b.weight)).collect();
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let total: u64 = weights.iter().map(|w| w / g).sum::<u64>() * POINTS_PER_WEIGHT;
    weights
        .iter()
        .map(|&w| match w / g * POINTS_PER_WEIGHT {
            0 => 0,
            n if total > MAX_RING_POINTS => {
                (u128::from(n) * u128::from(MAX_RING_POINTS) / u128::from(total)).max(1) as u64
            }
            n => n,
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Strategy for Hash {
    fn pick(&self, backends: &[Backend], ctx: &PickCtx) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let key = ctx.key.unwrap_or_else(rng::next_u64);
        let (mut active_sum, mut weight_sum) = (0u64, 0u64);
        for backend in backends {
            if backend.weight != 0 && !ctx.is_down(backend) {
                active_sum += u64::from(backend.state.load());
                weight_sum += ctx.effective_weight(backend);
            }
        }
        if weight_sum == 0 {
            return None;
        }
        let per_weight = self.factor * (active_sum + 1) as f64 / weight_sum as f64;
        let start = self.points.partition_point(|&p| p < key) % len;
        for step in 0..len.min(MAX_WALK) {
            let idx = self.owners[(start + step) % len] as usize;
            if self.under_capacity(&backends[idx], per_weight, ctx) && backends[idx].try_acquire() {
                return Some(idx);
            }
        }
        // Nearly everything is out: the key's owner and the backends after it in pool order,
        // first within capacity, then at all (capacity is a preference, `max_connections` the
        // limit).
        let owner = self.owners[start] as usize;
        let n = backends.len();
        for k in 0..n {
            let idx = (owner + k) % n;
            if self.under_capacity(&backends[idx], per_weight, ctx) && backends[idx].try_acquire() {
                return Some(idx);
            }
        }
        first_available(backends, owner, ctx)
    }
}

impl Hash {
    /// Usable, not full, and below its bounded-load capacity.
    #[inline]
    fn under_capacity(&self, backend: &Backend, per_weight: f64, ctx: &PickCtx) -> bool {
        if !ctx.is_candidate(backend) {
            return false;
        }
        let active = backend.state.load();
        if backend.is_full(active) {
            return false;
        }
        let capacity = (per_weight * ctx.effective_weight(backend) as f64).ceil();
        f64::from(active) < capacity
    }
}

/// The ring position of a client address under `key`.
pub(crate) fn hash_client(client: SocketAddr, key: HashKey) -> u64 {
    let mut h = Fnv::new();
    write_addr(&mut h, client, key == HashKey::ClientIpPort);
    h.finish()
}

/// The IP (IPv4-mapped IPv6 as plain IPv4, so dual-stack listeners agree) and optionally the
/// port, big-endian.
fn write_addr(h: &mut Fnv, addr: SocketAddr, with_port: bool) {
    match addr.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => h.write(&ip.octets()),
        std::net::IpAddr::V6(ip) => h.write(&ip.octets()),
    }
    if with_port {
        h.write(&addr.port().to_be_bytes());
    }
}

/// FNV-1a 64 with an fmix64 finish; see the module doc.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut k = self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::strategy::test_support::backends;

    #[test]
    fn the_hash_is_pinned() {
        // Placement must never change between versions: these values are part of the contract.
        let v4: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:4567".parse().unwrap();
        assert_eq!(
            hash_client(v4, HashKey::ClientIp),
            hash_client(mapped, HashKey::ClientIp)
        );
        assert_ne!(
            hash_client(v4, HashKey::ClientIp),
            hash_client(v4, HashKey::ClientIpPort)
        );
        assert_eq!(hash_client(v4, HashKey::ClientIp), PINNED_IP);
        assert_eq!(hash_client(v4, HashKey::ClientIpPort), PINNED_IP_PORT);
    }

    // Recorded from this implementation; a change here means every client moves.
    const PINNED_IP: u64 = 13_309_130_831_791_183_081;
    const PINNED_IP_PORT: u64 = 11_628_168_652_491_421_492;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv): FNV-1a 64 of "" and "a".
        let mut h = Fnv::new();
        assert_eq!(h.0, 0xcbf2_9ce4_8422_2325);
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
        h = Fnv::new();
        h.write(b"foobar");
        assert_eq!(h.0, 0x8594_4171_f739_67e8);
    }

    #[test]
    fn points_follow_weights_within_the_cap() {
        assert_eq!(point_counts(&backends(&[2, 4, 0])), vec![160, 320, 0]);
        let huge = point_counts(&backends(&[1_000_000, 1, 999_999]));
        assert!(huge.iter().sum::<u64>() <= MAX_RING_POINTS + 3);
        assert_eq!(huge[1], 1);
        assert!(huge[0].abs_diff(huge[2]) <= 1);
    }
}
