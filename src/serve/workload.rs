//! The CPU cost of compute segments: real hashing work, never a sleep (docs/ARCHITECTURE.md §5).
//!
//! Work is a fixed number of rounds, not "spin until the clock says N ms": a fixed amount
//! of work takes longer when threads outnumber cores, exactly as real compute does, so a
//! 64-thread sync pool on 2 cores is not flattered. The rounds per millisecond are calibrated
//! once per process.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

static ROUNDS_PER_MS: OnceLock<f64> = OnceLock::new();

/// One round mixes a 64-byte block into the state (FNV-style multiply-xor over 8 words).
fn rounds(n: u64, seed: &[u8]) -> u64 {
    let mut block = [0u64; 8];
    for (i, chunk) in seed.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        block[i % 8] ^= u64::from_le_bytes(w);
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for r in 0..n {
        for (i, w) in block.iter_mut().enumerate() {
            h = (h ^ *w ^ r).wrapping_mul(0x0000_0100_0000_01b3);
            *w = w.rotate_left(5) ^ h ^ i as u64;
        }
    }
    h
}

/// Measures this machine's hashing speed (best of several short runs) once.
pub(crate) fn calibrate() -> f64 {
    *ROUNDS_PER_MS.get_or_init(|| {
        let n = 20_000;
        let mut best = f64::MAX;
        for _ in 0..7 {
            let start = Instant::now();
            black_box(rounds(black_box(n), b"calibration"));
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        n as f64 / best.max(1e-6)
    })
}

/// Does `ms` milliseconds' worth (on an idle core) of hashing over `data`; returns a digest
/// of it, which callers put in the response so the work cannot be optimised away.
pub(crate) fn burn(ms: f64, data: &[u8]) -> u64 {
    let n = (ms.max(0.0) * calibrate()).round() as u64;
    black_box(rounds(black_box(n), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_scales_with_the_setting_and_depends_on_the_data() {
        assert_ne!(burn(0.1, b"a"), burn(0.1, b"b"));
        assert_eq!(burn(0.1, b"a"), burn(0.1, b"a"));
        assert_ne!(burn(0.1, b"a"), burn(0.2, b"a"));
        assert!(calibrate() > 0.0);
    }
}
