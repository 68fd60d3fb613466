//! A tournament (loser) tree over a fixed set of players, for
//! [`super::BatchAllocator`]'s merged best-first: every step changes only
//! the winner's key, and replaying the winner's path costs exactly
//! `log2 m` comparisons (`m` the player count rounded up to a power of
//! two), where a binary heap's sift-down costs up to two per level.

use crate::build::frontier::LogKey;

/// Keys are packed `u128`s, larger wins; 0 means "out" (see [`pack`]).
/// A key names its player (its low word), so each internal node holds
/// just its match's loser key and a replay reads one 16-byte entry per
/// level.
#[derive(Debug, Default)]
pub(super) struct Tournament {
    /// One key per leaf, `m` of them (padding leaves stay 0); read only by
    /// [`Tournament::build`].
    keys: Vec<u128>,
    /// `nodes[node]` for internal nodes `1..m`: the loser key of the match
    /// there; `nodes[0]`: the overall winner's key.
    nodes: Vec<u128>,
    /// Scratch for [`Tournament::build`]: the winner key below each node.
    winners: Vec<u128>,
}

/// The key of player `player` whose best next node has log-probability
/// `log_prob` (in `[-inf, 0]`): a larger `log_prob` wins, then the lower
/// player, as [`crate::build::frontier::LogKey`] orders them. For such
/// floats the order is the reverse of their bits' order, so the negated
/// bits go on top; the low word `u32::MAX - player` is never 0 for
/// `player < u32::MAX`, so a packed key is never "out", and [`player`]
/// reads it back.
pub(super) fn pack(log_prob: f64, player: u32) -> u128 {
    debug_assert!(log_prob <= 0.0 && !log_prob.is_nan() && player < u32::MAX);
    (u128::from(LogKey::new(log_prob).order()) << 32) | u128::from(u32::MAX - player)
}

/// The player a packed key belongs to.
fn player(key: u128) -> usize {
    (u32::MAX - key as u32) as usize
}

impl Tournament {
    /// Empties the tree for `players` players, all out, keeping the buffers.
    /// O(m).
    pub(super) fn reset(&mut self, players: usize) {
        let m = players.max(1).next_power_of_two();
        self.keys.clear();
        self.keys.resize(m, 0);
    }

    /// Sets a player's key before [`Tournament::build`].
    pub(super) fn set(&mut self, player: usize, key: u128) {
        self.keys[player] = key;
    }

    /// Plays every match bottom-up. O(m).
    pub(super) fn build(&mut self) {
        let m = self.keys.len();
        self.winners.clear();
        self.winners.resize(m, 0);
        self.winners.extend_from_slice(&self.keys);
        self.nodes.clear();
        self.nodes.resize(m, 0);
        for node in (1..m).rev() {
            let (a, b) = (self.winners[2 * node], self.winners[2 * node + 1]);
            self.winners[node] = a.max(b);
            self.nodes[node] = a.min(b);
        }
        self.nodes[0] = self.winners[1];
    }

    /// The current winner and its key; the key is 0 once every player is
    /// out, and the player is then meaningless.
    #[inline]
    pub(super) fn winner(&self) -> (usize, u128) {
        let key = self.nodes[0];
        (player(key), key)
    }

    /// Gives the current winner a new key (0 takes it out) and replays its
    /// path to the root. O(log m). Only the winner may change: the matches
    /// off its path are still decided. Not to be called once all are out.
    #[inline]
    pub(super) fn update_winner(&mut self, key: u128) {
        let nodes = &mut self.nodes[..];
        // `m` is a power of two: masking keeps every index below it, which
        // lets the compiler drop the bounds checks.
        let mask = nodes.len() - 1;
        let mut node = (player(nodes[0]) + nodes.len()) / 2;
        let mut cur = key;
        while node > 0 {
            let slot = &mut nodes[node & mask];
            if *slot > cur {
                std::mem::swap(slot, &mut cur);
            }
            node /= 2;
        }
        nodes[0] = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BinaryHeap;

    proptest! {
        /// The same winners, in the same order, as a binary heap of the
        /// same keys, when each winner is re-keyed lower or taken out.
        #[test]
        fn matches_a_binary_heap(
            start in prop::collection::vec(prop::option::of(-8i32..=0), 1..40),
            drops in prop::collection::vec(prop::option::of(0i32..3), 0..200),
        ) {
            let mut t = Tournament::default();
            t.reset(start.len());
            let mut heap = BinaryHeap::new();
            let mut logp = vec![0.0f64; start.len()];
            for (i, s) in start.iter().enumerate() {
                if let Some(s) = s {
                    logp[i] = f64::from(*s) / 4.0; // ties are likely on purpose
                    t.set(i, pack(logp[i], i as u32));
                    heap.push(pack(logp[i], i as u32));
                }
            }
            t.build();
            for d in &drops {
                let (w, key) = t.winner();
                prop_assert_eq!(Some(key), heap.pop().or(Some(0)));
                if key == 0 {
                    break;
                }
                let new = d.map_or(0, |d| {
                    logp[w] -= f64::from(d) / 4.0;
                    pack(logp[w], w as u32)
                });
                if new != 0 {
                    heap.push(new);
                }
                t.update_winner(new);
            }
        }
    }

    #[test]
    fn packed_keys_order_as_log_keys() {
        assert!(pack(0.0, 5) > pack(-0.0, 0));
        assert!(pack(-0.5, 9) > pack(-1.0, 0));
        assert!(pack(-1.0, 0) > pack(-1.0, 1));
        assert!(pack(f64::NEG_INFINITY, 7) > 0);
    }
}
