//! A radix heap frontier: best-first pops come out in non-increasing key
//! order, so a monotone queue replaces the binary heap (issue 16).

use super::frontier::{Candidate, Frontier};
use std::cell::Cell;

/// Buckets: one for keys equal to the last popped one, one per bit.
const BUCKETS: usize = 65;

/// [`Frontier`] as a radix heap (Ahuja, Mehlhorn, Orlin and Tarjan 1990) on
/// the bits of the key.
///
/// Keys are log-probabilities in `[-inf, 0]`, whose bit patterns ascend as
/// the keys descend (see [`super::frontier::LogKey`]), so the best key has
/// the smallest bits. Bucket `i > 0` holds the candidates whose bits first
/// differ from the last popped key's at bit `i - 1`; bucket 0 those equal
/// to it. The best candidate is in the lowest non-empty bucket; popping it
/// makes it the reference and spreads the rest of its bucket over lower
/// buckets. Each candidate moves down at most 64 times: amortized O(1) push
/// and O(64) pop, against O(log n) sifts for a binary heap; finding the best
/// scans one bucket (cached until the next pop). Space O(n), kept across builds.
///
/// Only valid when no pushed key is above the last popped one. The builder
/// guarantees it: a sibling's key is at most the committed node's, and an
/// expanded node's key is at most the last committed key (a candidate is
/// committed only when it beats every unexpanded node), so its children's are.
#[derive(Debug)]
pub struct RadixFrontier {
    buckets: [Vec<Candidate>; BUCKETS],
    /// Bit `i` set when bucket `i` is non-empty.
    occupied: u128,
    /// Bits of the last popped key (0, the key `+0.0`, after a clear).
    last: u64,
    /// Where the best candidate is (bucket, index), once looked up.
    best: Cell<Option<(usize, usize)>>,
}

impl Default for RadixFrontier {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            last: 0,
            best: Cell::new(None),
        }
    }
}

#[inline]
fn bits(c: &Candidate) -> u64 {
    c.score.get().to_bits()
}

impl RadixFrontier {
    #[inline]
    fn bucket_of(&self, b: u64) -> usize {
        (u64::BITS - (b ^ self.last).leading_zeros()) as usize
    }

    /// The best candidate's position: the minimum bits of the lowest
    /// non-empty bucket. O(size of that bucket), then cached.
    #[inline]
    fn locate(&self) -> Option<(usize, usize)> {
        if let Some(at) = self.best.get() {
            return Some(at);
        }
        if self.occupied == 0 {
            return None;
        }
        let i = self.occupied.trailing_zeros() as usize;
        let bucket = &self.buckets[i];
        let mut at = bucket.len() - 1;
        if i > 0 {
            for (j, c) in bucket.iter().enumerate() {
                if bits(c) < bits(&bucket[at]) {
                    at = j;
                }
            }
        }
        self.best.set(Some((i, at)));
        Some((i, at))
    }
}

impl Frontier for RadixFrontier {
    #[inline]
    fn push(&mut self, c: Candidate) {
        let b = bits(&c);
        debug_assert!(b >= self.last, "radix heap keys must not beat the last pop");
        let j = self.bucket_of(b);
        if let Some((i, at)) = self.best.get() {
            if b < bits(&self.buckets[i][at]) {
                self.best.set(Some((j, self.buckets[j].len())));
            }
        }
        self.buckets[j].push(c);
        self.occupied |= 1 << j;
    }

    fn pop(&mut self) -> Option<Candidate> {
        let (i, at) = self.locate()?;
        self.best.set(None);
        let c = self.buckets[i].swap_remove(at);
        if i > 0 {
            // The popped key is the new reference: the rest of its bucket
            // moves to lower buckets.
            self.last = bits(&c);
            let mut moving = std::mem::take(&mut self.buckets[i]);
            self.occupied &= !(1 << i);
            for m in moving.drain(..) {
                let j = self.bucket_of(bits(&m));
                self.buckets[j].push(m);
                self.occupied |= 1 << j;
            }
            // Keep the emptied allocation (no allocation per reused build).
            self.buckets[i] = moving;
        } else if self.buckets[0].is_empty() {
            self.occupied &= !1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<Candidate> {
        self.locate().map(|(i, at)| self.buckets[i][at])
    }

    fn clear(&mut self) {
        for i in 0..BUCKETS {
            if self.occupied & (1 << i) != 0 {
                self.buckets[i].clear();
            }
        }
        self.occupied = 0;
        self.last = 0;
        self.best.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::frontier::{BinaryFrontier, Child, LogKey, ROOT};
    use proptest::prelude::*;

    fn cand(key: f64, rank: u32) -> Candidate {
        Candidate {
            score: LogKey::new(key),
            item: Child { parent: ROOT, rank },
        }
    }

    proptest! {
        /// Under the builder's discipline (every push at most the last
        /// popped key), the radix heap pops the same keys in the same order
        /// as the binary heap (other code), and peeks what it pops.
        #[test]
        fn pops_as_the_binary_heap(
            first in proptest::collection::vec(-30.0f64..=0.0, 1..20),
            ops in proptest::collection::vec((0u8..3, 0.0f64..5.0, any::<bool>()), 0..200),
        ) {
            let (mut radix, mut binary) = (RadixFrontier::default(), BinaryFrontier::default());
            for (r, &k) in first.iter().enumerate() {
                radix.push(cand(k, r as u32));
                binary.push(cand(k, r as u32));
            }
            let mut last = 0.0f64;
            for (op, drop, tie) in ops {
                let key = if tie { last } else { last - drop };
                match op {
                    0 => {
                        radix.push(cand(key, 0));
                        binary.push(cand(key, 0));
                    }
                    _ => {
                        let peeked = radix.peek().map(|c| c.score.get().to_bits());
                        let got = radix.pop().map(|c| c.score.get().to_bits());
                        let want = binary.pop().map(|c| c.score.get().to_bits());
                        prop_assert_eq!(peeked, got);
                        prop_assert_eq!(got, want);
                        if let Some(b) = got {
                            last = f64::from_bits(b);
                        }
                    }
                }
            }
            radix.clear();
            prop_assert!(radix.peek().is_none());
        }
    }
}
