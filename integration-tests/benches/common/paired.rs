//! Paired timing shared by the benchmarks: each round times `a`, `b`, `b`,
//! `a` (ABBA), so a round's first request and any drift within it weigh on
//! both sides alike.

use std::future::Future;
use std::time::{Duration, Instant};

/// One round's two times of each side.
pub(crate) struct Round {
    pub(crate) a: [Duration; 2],
    pub(crate) b: [Duration; 2],
}

impl Round {
    /// `a`'s time over `b`'s, for the round.
    pub(crate) fn ratio(&self) -> f64 {
        (self.a[0] + self.a[1]).as_secs_f64() / (self.b[0] + self.b[1]).as_secs_f64()
    }
}

/// `rounds` rounds of `a`, `b`, `b`, `a`.
pub(crate) async fn abba<A, AF, B, BF>(a: &A, b: &B, rounds: usize) -> Vec<Round>
where
    A: Fn() -> AF,
    AF: Future<Output = ()>,
    B: Fn() -> BF,
    BF: Future<Output = ()>,
{
    let mut all = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        a().await;
        let a1 = t.elapsed();
        let t = Instant::now();
        b().await;
        let b1 = t.elapsed();
        let t = Instant::now();
        b().await;
        let b2 = t.elapsed();
        let t = Instant::now();
        a().await;
        let a2 = t.elapsed();
        all.push(Round {
            a: [a1, a2],
            b: [b1, b2],
        });
    }
    all
}
