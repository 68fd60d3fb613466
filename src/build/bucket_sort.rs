//! Sorting the threshold build's records into canonical order in expected
//! linear time (issue 16: a comparison sort was half of the build).
//!
//! Keys are `(bits of ln pi, depth << 32 | index)`, and for the
//! log-probabilities of a tree (all in `[-inf, 0]`) ascending bits are
//! descending values ([`super::frontier::LogKey`]). A counting sort
//! scatters them into `n` buckets of equal width in `ln pi` (a monotone
//! map, so buckets are already in order), then each bucket is sorted:
//! insertion sort up to [`SMALL_BUCKET`] keys, the standard sort above.
//! Path counts grow about exponentially as `ln pi` falls, so over the
//! `ln(n)`-nat range of a tree's keys most buckets hold a few keys. Large
//! buckets come from ties: every permutation of a rank path has the same
//! sum up to the rounding of the additions (`zipf:1.1:32` at `P = 16384`
//! has 1,243 distinct keys among 16,384 nodes, and one bucket held 345),
//! and near-equal keys interleave in depth-first order, which made one
//! insertion sort over all buckets quadratic there.
//!
//! Cost: O(n) for the count and the scatter, plus the bucket sorts,
//! O(n log n) in the worst case; space `n` keys, `n` bucket numbers and
//! `n + 1` counters, reused.

/// A sort key: `(ln pi bits, depth << 32 | record index)`.
pub(super) type SortKey = (u64, u64);

/// Reusable buffers of the bucket sort.
#[derive(Debug, Default)]
pub(super) struct BucketSort {
    /// Bucket of every key.
    slots: Vec<u32>,
    counts: Vec<u32>,
    scratch: Vec<SortKey>,
}

impl BucketSort {
    /// Makes room for sorting `n` keys.
    pub(super) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n.saturating_sub(self.slots.len()));
        self.counts
            .reserve((n + 1).saturating_sub(self.counts.len()));
        self.scratch.reserve(n.saturating_sub(self.scratch.len()));
    }

    /// Keeps the first `keep` of `keys` in ascending order (best node
    /// first): buckets past the one holding the `keep`-th key are dropped
    /// unsorted.
    pub(super) fn sort_first(&mut self, keys: &mut Vec<SortKey>, keep: usize) {
        let n = keys.len();
        if n < 2 {
            keys.truncate(keep);
            return;
        }
        let value = |k: &SortKey| f64::from_bits(k.0);
        // In key bits the best key is the smallest (no float `max`, whose
        // NaN handling costs more than the comparison).
        let (mut first, mut last_bits) = (u64::MAX, 0u64);
        for k in keys.iter() {
            first = first.min(k.0);
            last_bits = last_bits.max(k.0);
        }
        let (top, bottom) = (f64::from_bits(first), f64::from_bits(last_bits));
        let width = top - bottom;
        if !(width.is_finite() && width > 0.0) {
            keys.sort_unstable();
            keys.truncate(keep);
            return;
        }
        let buckets = n;
        let scale = (buckets - 1) as f64 / width;
        let last = buckets as u32 - 1;
        self.slots.clear();
        self.slots.extend(
            keys.iter()
                .map(|k| (((top - value(k)) * scale) as u32).min(last)),
        );
        self.counts.clear();
        self.counts.resize(buckets + 1, 0);
        for &b in &self.slots {
            self.counts[b as usize + 1] += 1;
        }
        for b in 1..=buckets {
            self.counts[b] += self.counts[b - 1];
        }
        // Only the buckets up to the one holding the `keep`-th key are
        // scattered and sorted; `counts[b + 1]` is the end of bucket `b`.
        let kept_buckets = if keep >= n {
            buckets
        } else {
            self.counts[1..=buckets].partition_point(|&end| (end as usize) < keep) + 1
        };
        let kept = self.counts[kept_buckets] as usize;
        // Every kept slot is overwritten: only growth needs filling.
        self.scratch.resize(kept, (0, 0));
        for (&k, &b) in keys.iter().zip(&self.slots) {
            if b < kept_buckets as u32 {
                let slot = &mut self.counts[b as usize];
                self.scratch[*slot as usize] = k;
                *slot += 1;
            }
        }
        // `counts[b]` is now the end of bucket `b`.
        let mut start = 0;
        for &end in &self.counts[..kept_buckets] {
            let (end, len) = (end as usize, end as usize - start);
            // Most buckets hold zero or one key.
            if len > 1 {
                let bucket = &mut self.scratch[start..end];
                if len <= SMALL_BUCKET {
                    insertion_sort(bucket);
                } else {
                    bucket.sort_unstable();
                }
            }
            start = end;
        }
        // Copied back rather than swapped, so that each buffer keeps its
        // own size and a reused sorter stops allocating after one call.
        keys.clear();
        keys.extend_from_slice(&self.scratch[..keep.min(kept)]);
    }
}

/// Buckets up to this size are insertion-sorted; larger ones (a run of
/// keys equal up to rounding: permutations of a rank path sum their
/// log-probabilities in different orders) go to the standard sort.
const SMALL_BUCKET: usize = 16;

/// Insertion sort, for the short buckets.
fn insertion_sort(keys: &mut [SortKey]) {
    for i in 1..keys.len() {
        let k = keys[i];
        let mut j = i;
        while j > 0 && keys[j - 1] > k {
            keys[j] = keys[j - 1];
            j -= 1;
        }
        keys[j] = k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys of a tree: `ln pi` in `[-60, 0]` (often equal: few distinct
    /// values), any low word.
    fn keys() -> impl Strategy<Value = Vec<SortKey>> {
        let value = prop_oneof![
            (-60.0f64..=0.0),
            (0u8..4).prop_map(|v| -f64::from(v)),
            Just(0.0)
        ];
        prop::collection::vec((value, any::<u64>()), 0..300)
            .prop_map(|v| v.into_iter().map(|(x, low)| (x.to_bits(), low)).collect())
    }

    proptest! {
        /// The same order as the standard sort, ties and degenerate ranges included.
        #[test]
        fn sorts_as_the_standard_sort(mut k in keys(), keep in 0usize..400) {
            let mut want = k.clone();
            want.sort_unstable();
            want.truncate(keep);
            BucketSort::default().sort_first(&mut k, keep);
            prop_assert_eq!(k, want);
        }
    }
}
