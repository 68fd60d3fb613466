//! Byte-level n-gram language models with interpolated Kneser-Ney smoothing:
//! the real verifier `p` and drafter `q` of docs/THEORY.md section 1 when no LLM
//! weights are at hand.
//!
//! [`NgramLm`] holds the trained counts (immutable, shared); [`NgramModel`]
//! is a cheap view of it that implements [`NextTokenModel`] below a settable
//! *context* (the current text), with a sampling temperature and a top-k
//! truncation. Tokens are bytes, `0..=255`.
//!
//! ## The estimator (interpolated Kneser-Ney, Chen and Goodman 1998)
//!
//! For an order-`N` model and a history `h` of `m <= N - 1` bytes with `h'`
//! its last `m - 1` bytes:
//!
//! ```text
//! p_m(w | h) = (max(c_m(h w) - D_m, 0) + D_m * N1+(h .) * p_{m-1}(w | h')) / c_m(h .)
//! p_{-1}(w)  = 1 / 256
//! ```
//!
//! where `c_m` is the raw count for the top order `m = N - 1` and the
//! *continuation count* `N1+(. h w)` (the number of distinct bytes seen before
//! `h w`) below it, `c_m(h .) = sum_w c_m(h w)`, and `N1+(h .)` is the number
//! of bytes `w` with `c_m(h w) > 0`. A history never seen at level `m` backs
//! off entirely: `p_m = p_{m-1}`. Every level sums to one over all 256 bytes
//! because each nonzero count is at least 1 and `0 < D_m <= 1`. The discount
//! is `D_m = n1 / (n1 + 2 n2)` (Ney, Essen and Kneser 1994), with `n1`, `n2`
//! the numbers of level-`m` counts equal to 1 and 2 (`0.5` when `n1 = 0`).
//!
//! ## Storage
//!
//! Contexts of up to 7 bytes and the next byte pack into one `u64` key, so the
//! training is a sort of the text's n-gram keys per level: for a text of `T`
//! bytes, time O(N T log T) and space O(N T) (about 12 bytes per distinct
//! n-gram). Queries binary-search each level's sorted contexts: a full
//! 256-byte distribution costs O(N (log T + 256)).

use crate::dist::{TokenDist, TokenId};
use crate::error::{Error, Result};
use crate::model::NextTokenModel;
use std::collections::HashMap;

/// The largest supported order: a context of 7 bytes plus the next byte packs
/// into a `u64`.
pub const MAX_ORDER: usize = 8;

/// Vocabulary size of a byte-level model.
pub const VOCAB: usize = 256;

/// Discount used when a level has no count equal to 1 (the Ney estimate is
/// then undefined).
const FALLBACK_DISCOUNT: f64 = 0.5;

/// Default number of distributions an [`NgramModel`] remembers.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// One level of the model: contexts of `m` bytes and their follower counts.
#[derive(Debug, Clone, Default)]
struct Level {
    /// Sorted distinct packed contexts (most recent byte in the low bits).
    contexts: Vec<u64>,
    /// `starts[i]..starts[i + 1]` indexes the followers of `contexts[i]`.
    starts: Vec<u32>,
    /// `c_m(h .)` per context.
    totals: Vec<u32>,
    /// Follower bytes, ascending within a context.
    bytes: Vec<u8>,
    /// `c_m(h w)` aligned with `bytes` (raw or continuation counts).
    counts: Vec<u32>,
    discount: f64,
}

impl Level {
    /// Builds a level from sorted keys `(context << 8) | byte` with counts.
    fn from_counted(keys: &[(u64, u32)]) -> Self {
        let mut level = Level::default();
        let (mut n1, mut n2) = (0u64, 0u64);
        for &(key, count) in keys {
            let context = key >> 8;
            if level.contexts.last() != Some(&context) {
                level.contexts.push(context);
                level.starts.push(level.bytes.len() as u32);
                level.totals.push(0);
            }
            if let Some(total) = level.totals.last_mut() {
                *total += count;
            }
            level.bytes.push((key & 0xff) as u8);
            level.counts.push(count);
            n1 += u64::from(count == 1);
            n2 += u64::from(count == 2);
        }
        level.starts.push(level.bytes.len() as u32);
        level.discount = if n1 == 0 {
            FALLBACK_DISCOUNT
        } else {
            n1 as f64 / (n1 + 2 * n2) as f64
        };
        level
    }

    fn find(&self, context: u64) -> Option<usize> {
        self.contexts.binary_search(&context).ok()
    }

    fn followers(&self, i: usize) -> (&[u8], &[u32]) {
        let range = self.starts[i] as usize..self.starts[i + 1] as usize;
        (&self.bytes[range.clone()], &self.counts[range])
    }
}

/// Packs the bytes of `context` (at most 8) into a `u64`, most recent byte
/// lowest.
fn pack(context: &[u8]) -> u64 {
    context
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Sorts keys and counts equal runs: `(key, multiplicity)`.
fn count_runs(mut keys: Vec<u64>) -> Vec<(u64, u32)> {
    keys.sort_unstable();
    let mut out: Vec<(u64, u32)> = Vec::new();
    for key in keys {
        match out.last_mut() {
            Some((k, c)) if *k == key => *c += 1,
            _ => out.push((key, 1)),
        }
    }
    out
}

/// Keys of every `(len)`-gram of `text`: `pack(text[i - len + 1..=i])`.
fn ngram_keys(text: &[u8], len: usize) -> Vec<u64> {
    text.windows(len).map(pack).collect()
}

/// A trained byte-level interpolated Kneser-Ney language model (see the
/// module docs for the estimator).
///
/// # Examples
///
/// ```
/// use speclight::model::ngram::NgramLm;
/// let lm = NgramLm::train(b"abracadabra abracadabra", 3)?;
/// let mut probs = [0.0; 256];
/// lm.fill_probs(b"ab", &mut probs);
/// assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// assert!(probs[b'r' as usize] > 0.5);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NgramLm {
    order: usize,
    /// `levels[m]`: contexts of `m` bytes, `m = 0..order`.
    levels: Vec<Level>,
    trained_bytes: usize,
}

impl NgramLm {
    /// Trains an order-`order` model (contexts of `order - 1` bytes) on
    /// `text`. Time O(order T log T), space O(order T) for `T = text.len()`:
    /// about a second for 1 MB at order 8 in release mode.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `order` is not in `1..=MAX_ORDER` or
    /// `text` is shorter than `order` bytes.
    pub fn train(text: &[u8], order: usize) -> Result<Self> {
        if !(1..=MAX_ORDER).contains(&order) {
            return Err(Error::InvalidArgument(format!(
                "n-gram order {order} is not in 1..={MAX_ORDER}"
            )));
        }
        if text.len() < order {
            return Err(Error::InvalidArgument(format!(
                "training text of {} bytes is shorter than the order {order}",
                text.len()
            )));
        }
        let top = order - 1;
        let mut levels = Vec::with_capacity(order);
        for m in 0..order {
            let counted = if m == top {
                count_runs(ngram_keys(text, m + 1))
            } else {
                // Continuation counts: distinct (m+2)-grams x h w, then count
                // how many distinct x precede each h w.
                let mut distinct = ngram_keys(text, m + 2);
                distinct.sort_unstable();
                distinct.dedup();
                let mask = (1u64 << (8 * (m + 1))) - 1;
                count_runs(distinct.into_iter().map(|k| k & mask).collect())
            };
            levels.push(Level::from_counted(&counted));
        }
        Ok(Self {
            order,
            levels,
            trained_bytes: text.len(),
        })
    }

    /// The order `N` (the model looks at the last `N - 1` bytes).
    pub fn order(&self) -> usize {
        self.order
    }

    /// Number of bytes trained on.
    pub fn trained_bytes(&self) -> usize {
        self.trained_bytes
    }

    /// The discount `D_m` of each level, `m = 0..order`.
    pub fn discounts(&self) -> Vec<f64> {
        self.levels.iter().map(|l| l.discount).collect()
    }

    /// Number of distinct `(context, byte)` pairs stored, over all levels.
    pub fn ngram_count(&self) -> usize {
        self.levels.iter().map(|l| l.bytes.len()).sum()
    }

    /// Writes `p(w | history)` for all 256 bytes into `out` (the module's
    /// recursion; only the last `order - 1` bytes of `history` matter).
    /// The values are positive and sum to one up to rounding. Time
    /// O(order (log T + 256)), no allocation.
    pub fn fill_probs(&self, history: &[u8], out: &mut [f64; VOCAB]) {
        out.fill(1.0 / VOCAB as f64);
        let hist = &history[history.len().saturating_sub(self.order - 1)..];
        for m in 0..=hist.len() {
            let level = &self.levels[m];
            // A history unseen at level m is unseen at every longer level.
            let Some(i) = level.find(pack(&hist[hist.len() - m..])) else {
                break;
            };
            let (bytes, counts) = level.followers(i);
            let total = f64::from(level.totals[i]);
            let d = level.discount;
            let backoff = d * bytes.len() as f64 / total;
            out.iter_mut().for_each(|p| *p *= backoff);
            for (&w, &c) in bytes.iter().zip(counts) {
                out[w as usize] += (f64::from(c) - d) / total;
            }
        }
    }

    /// `ln p(byte | history)` in nats, computed for this one byte (no
    /// 256-vector). Time O(order log T).
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::model::ngram::NgramLm;
    /// let lm = NgramLm::train(b"abababab", 2)?;
    /// let mut probs = [0.0; 256];
    /// lm.fill_probs(b"a", &mut probs);
    /// assert!((lm.log_prob(b"a", b'b') - probs[b'b' as usize].ln()).abs() < 1e-12);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn log_prob(&self, history: &[u8], byte: u8) -> f64 {
        let mut p = 1.0 / VOCAB as f64;
        let hist = &history[history.len().saturating_sub(self.order - 1)..];
        for m in 0..=hist.len() {
            let level = &self.levels[m];
            let Some(i) = level.find(pack(&hist[hist.len() - m..])) else {
                break;
            };
            let (bytes, counts) = level.followers(i);
            let total = f64::from(level.totals[i]);
            let d = level.discount;
            let seen = bytes
                .binary_search(&byte)
                .map_or(0.0, |j| f64::from(counts[j]) - d);
            p = (seen + d * bytes.len() as f64 * p) / total;
        }
        p.ln()
    }

    /// Cross-entropy of `text` under the model, in nats per byte: the mean of
    /// `-ln p(x_i | x_{<i})` over `i >= warmup` (each byte predicted from the
    /// bytes before it in `text`; `warmup` skips a start without history).
    /// Divide by `ln 2` for bits per byte. Time O(T order log T).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if no byte is left after `warmup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::model::ngram::NgramLm;
    /// let lm = NgramLm::train(b"the cat sat on the mat. the cat sat.", 3)?;
    /// let h = lm.cross_entropy(b"the cat sat on the mat.", 2)?;
    /// assert!(h > 0.0 && h < 256f64.ln());
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn cross_entropy(&self, text: &[u8], warmup: usize) -> Result<f64> {
        if text.len() <= warmup {
            return Err(Error::InvalidArgument(format!(
                "text of {} bytes has nothing to score after a warm-up of {warmup}",
                text.len()
            )));
        }
        let span = self.order - 1;
        let total: f64 = (warmup..text.len())
            .map(|i| -self.log_prob(&text[i.saturating_sub(span)..i], text[i]))
            .sum();
        Ok(total / (text.len() - warmup) as f64)
    }

    /// A [`NextTokenModel`] view of this model with an empty context,
    /// temperature 1 and no truncation.
    pub fn model(&self) -> NgramModel<'_> {
        NgramModel {
            lm: self,
            context: Vec::with_capacity(MAX_ORDER),
            history: Vec::with_capacity(2 * MAX_ORDER),
            temperature: 1.0,
            top_k: VOCAB,
            probs: Box::new([0.0; VOCAB]),
            order: Vec::with_capacity(VOCAB),
            picked_tokens: Vec::with_capacity(VOCAB),
            picked_probs: Vec::with_capacity(VOCAB),
            cache: HashMap::new(),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// An [`NgramLm`] as a [`NextTokenModel`]: `next(path)` is the distribution
/// after `context + path`, at a temperature (`p^(1/T)` renormalised over all
/// 256 bytes), truncated to the `top_k` most probable bytes (the rest is the
/// tail).
///
/// The distribution depends only on the last `order - 1` bytes of
/// `context + path`, so the view remembers the distributions it built, keyed
/// by those bytes (up to a cache capacity; when full, the cache is emptied).
/// Builders and evaluators ask about overlapping paths, and a low-order
/// drafter sees few distinct histories, so most calls are look-ups. Work
/// buffers are reused: a call allocates only when it builds a new
/// [`TokenDist`].
///
/// # Examples
///
/// ```
/// use speclight::model::ngram::NgramLm;
/// use speclight::NextTokenModel;
/// let lm = NgramLm::train(b"hello world, hello there, hello again", 4)?;
/// let mut m = lm.model().with_top_k(8)?.with_context(b"hel");
/// let d = m.next(&[u32::from(b'l')])?; // after "hell"
/// assert_eq!(d.tokens()[0], u32::from(b'o'));
/// assert_eq!(d.len(), 8);
/// # Ok::<(), speclight::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NgramModel<'a> {
    lm: &'a NgramLm,
    /// The last `order - 1` bytes of the context.
    context: Vec<u8>,
    history: Vec<u8>,
    temperature: f64,
    top_k: usize,
    probs: Box<[f64; VOCAB]>,
    order: Vec<u8>,
    picked_tokens: Vec<TokenId>,
    picked_probs: Vec<f64>,
    /// Distributions by history key (see [`history_key`]).
    cache: HashMap<u64, TokenDist>,
    cache_capacity: usize,
}

/// Key of a history of at most 7 bytes: the packed bytes with the length in
/// the top byte (a shorter history is a different question).
fn history_key(history: &[u8]) -> u64 {
    pack(history) | ((history.len() as u64) << 56)
}

impl<'a> NgramModel<'a> {
    /// The trained model this view reads.
    pub fn lm(&self) -> &'a NgramLm {
        self.lm
    }

    /// Sets the sampling temperature `T`: probabilities become `p^(1/T)`,
    /// renormalised.
    ///
    /// # Errors
    ///
    /// [`Error::BadTemperature`] unless `T` is positive and finite.
    pub fn with_temperature(mut self, temperature: f64) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::BadTemperature(temperature));
        }
        self.temperature = temperature;
        self.cache.clear();
        Ok(self)
    }

    /// Keeps the `k` most probable bytes (`k >= 256` keeps all).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroTopK`] for `k == 0`.
    pub fn with_top_k(mut self, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::ZeroTopK);
        }
        self.top_k = k.min(VOCAB);
        self.cache.clear();
        Ok(self)
    }

    /// Sets how many distributions the view remembers (the last one is
    /// always kept, so 0 acts as 1).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self.cache.clear();
        self
    }

    /// Sets the context and returns the model (builder style).
    pub fn with_context(mut self, context: &[u8]) -> Self {
        self.set_context_bytes(context);
        self
    }

    /// Sets the context and returns `&mut self` (for chained calls).
    pub fn with_context_ref(&mut self, context: &[u8]) -> &mut Self {
        self.set_context_bytes(context);
        self
    }

    /// Sets the context: the text the draft tree hangs below. Only its last
    /// `order - 1` bytes are kept. O(order).
    pub fn set_context_bytes(&mut self, context: &[u8]) {
        let keep = self.lm.order - 1;
        self.context.clear();
        self.context
            .extend_from_slice(&context[context.len().saturating_sub(keep)..]);
    }

    /// The sampling temperature.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The truncation `k` (256 = none).
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// Writes the last `order - 1` bytes of `context + path` into
    /// `self.history`.
    fn fill_history(&mut self, path: &[TokenId]) -> Result<()> {
        if let Some(&t) = path.iter().find(|&&t| t > 255) {
            return Err(Error::Model(format!(
                "token {t} is not a byte (byte-level model)"
            )));
        }
        let keep = self.lm.order - 1;
        let from_path = path.len().min(keep);
        let from_context = (keep - from_path).min(self.context.len());
        self.history.clear();
        self.history
            .extend_from_slice(&self.context[self.context.len() - from_context..]);
        // Every token was checked to be a byte above.
        self.history
            .extend(path[path.len() - from_path..].iter().map(|&t| t as u8));
        Ok(())
    }

    /// Fills the probability vector for `self.history` at the model's
    /// temperature, before truncation.
    fn fill_tempered(&mut self) {
        self.lm.fill_probs(&self.history, &mut self.probs);
        if self.temperature != 1.0 {
            let inv = 1.0 / self.temperature;
            // Log space: p^(1/T) underflows for small T.
            let max = self
                .probs
                .iter()
                .fold(f64::NEG_INFINITY, |m, p| m.max(p.ln() * inv));
            let mut sum = 0.0;
            for p in self.probs.iter_mut() {
                *p = (p.ln() * inv - max).exp();
                sum += *p;
            }
            self.probs.iter_mut().for_each(|p| *p /= sum);
        }
    }

    /// Builds the truncated distribution from `self.probs`.
    fn truncated(&mut self) -> Result<TokenDist> {
        self.order.clear();
        self.order.extend(0..=255u8);
        let probs = &self.probs;
        if self.top_k < VOCAB {
            // Only the top k need to be found; TokenDist sorts them.
            self.order.select_nth_unstable_by(self.top_k - 1, |&a, &b| {
                probs[b as usize]
                    .total_cmp(&probs[a as usize])
                    .then(a.cmp(&b))
            });
        }
        self.picked_tokens.clear();
        self.picked_probs.clear();
        for &b in &self.order[..self.top_k] {
            self.picked_tokens.push(TokenId::from(b));
            self.picked_probs.push(probs[b as usize]);
        }
        TokenDist::from_token_probs(&self.picked_tokens, &self.picked_probs)
    }

    /// The full 256-byte distribution after `context + path` at the model's
    /// temperature, before top-k truncation (index = byte).
    ///
    /// # Errors
    ///
    /// [`Error::Model`] if a path token is not a byte.
    pub fn full_probs(&mut self, path: &[TokenId]) -> Result<&[f64; VOCAB]> {
        self.fill_history(path)?;
        self.fill_tempered();
        Ok(&self.probs)
    }
}

impl NextTokenModel for NgramModel<'_> {
    /// Time O(order (log T + 256) + k log k) for the top `k`.
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        self.fill_history(path)?;
        let key = history_key(&self.history);
        if !self.cache.contains_key(&key) {
            self.fill_tempered();
            let dist = self.truncated()?;
            if self.cache.len() >= self.cache_capacity.max(1) {
                self.cache.clear();
            }
            self.cache.insert(key, dist);
        }
        self.cache
            .get(&key)
            .ok_or_else(|| Error::Model("n-gram cache lost an entry it just stored".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// Interpolated Kneser-Ney written directly from the definitions with
    /// hash maps over n-gram strings: an independent second computation.
    fn brute_force(text: &[u8], order: usize, history: &[u8]) -> Vec<f64> {
        let top = order - 1;
        // counts[m][(h, w)] for contexts of m bytes.
        let mut counts: Vec<HashMap<(Vec<u8>, u8), u32>> = vec![HashMap::new(); order];
        for i in top..text.len() {
            *counts[top]
                .entry((text[i - top..i].to_vec(), text[i]))
                .or_default() += 1;
        }
        for (m, level) in counts.iter_mut().enumerate().take(top) {
            let mut preceders: HashMap<(Vec<u8>, u8), HashSet<u8>> = HashMap::new();
            for i in (m + 1)..text.len() {
                preceders
                    .entry((text[i - m..i].to_vec(), text[i]))
                    .or_default()
                    .insert(text[i - m - 1]);
            }
            *level = preceders
                .into_iter()
                .map(|(k, s)| (k, s.len() as u32))
                .collect();
        }
        let discount = |m: usize| {
            let n1 = counts[m].values().filter(|&&c| c == 1).count() as f64;
            let n2 = counts[m].values().filter(|&&c| c == 2).count() as f64;
            if n1 == 0.0 {
                0.5
            } else {
                n1 / (n1 + 2.0 * n2)
            }
        };
        let hist = &history[history.len().saturating_sub(top)..];
        let mut p = vec![1.0 / 256.0; 256];
        for m in 0..=hist.len() {
            let h = &hist[hist.len() - m..];
            let total: u32 = (0..=255u8)
                .map(|w| counts[m].get(&(h.to_vec(), w)).copied().unwrap_or(0))
                .sum();
            if total == 0 {
                break;
            }
            let types = (0..=255u8)
                .filter(|&w| counts[m].contains_key(&(h.to_vec(), w)))
                .count() as f64;
            let d = discount(m);
            p = (0..=255u8)
                .map(|w| {
                    let c = counts[m].get(&(h.to_vec(), w)).copied().unwrap_or(0) as f64;
                    ((c - d).max(0.0) + d * types * p[w as usize]) / total as f64
                })
                .collect();
        }
        p
    }

    #[test]
    fn matches_brute_force_on_a_tiny_text() {
        let text = b"she sells sea shells by the sea shore; the shells she sells are sea shells";
        for order in 1..=5 {
            let lm = NgramLm::train(text, order).unwrap();
            let mut probs = [0.0; VOCAB];
            for end in 0..text.len() {
                let history = &text[..end];
                lm.fill_probs(history, &mut probs);
                let expected = brute_force(text, order, history);
                for w in 0..VOCAB {
                    assert!(
                        (probs[w] - expected[w]).abs() < 1e-12,
                        "order {order}, history {:?}, byte {w}: {} vs {}",
                        String::from_utf8_lossy(history),
                        probs[w],
                        expected[w]
                    );
                    let single = lm.log_prob(history, w as u8).exp();
                    assert!((single - probs[w]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn full_distribution_sums_to_one_everywhere() {
        let text = b"fn main() { println!(\"hello\"); } // fn main() { let x = 1; }";
        for order in 1..=MAX_ORDER {
            let lm = NgramLm::train(text, order).unwrap();
            let mut probs = [0.0; VOCAB];
            // Seen histories, unseen ones, and ones shorter than the order.
            for history in [&b""[..], b"fn ", b"main() {", b"zzzzzzzzzz", b"x = 1; }"] {
                lm.fill_probs(history, &mut probs);
                let sum: f64 = probs.iter().sum();
                assert!((sum - 1.0).abs() < 1e-12, "order {order}: sum {sum}");
                assert!(probs.iter().all(|&p| p > 0.0));
            }
        }
    }

    #[test]
    fn temperature_and_top_k_shape_the_distribution() {
        let lm = NgramLm::train(b"aaaaaaaabaaaaaaab", 2).unwrap();
        let mut m = lm.model().with_context(b"a");
        let full = *m.full_probs(&[]).unwrap();
        let mut hot = lm.model().with_temperature(2.0).unwrap().with_context(b"a");
        let hot_probs = *hot.full_probs(&[]).unwrap();
        let norm: f64 = full.iter().map(|p| p.sqrt()).sum();
        for w in 0..VOCAB {
            assert!((hot_probs[w] - full[w].sqrt() / norm).abs() < 1e-12);
        }
        let mut cut = lm.model().with_top_k(3).unwrap().with_context(b"a");
        let d = cut.next(&[]).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.tokens()[0], u32::from(b'a'));
        let kept: f64 = d.probs().iter().sum();
        assert!((d.tail_mass() - (1.0 - kept)).abs() < 1e-12);
        assert!(matches!(
            lm.model().with_temperature(0.0),
            Err(Error::BadTemperature(_))
        ));
        assert!(matches!(cut.next(&[300]), Err(Error::Model(_))));
    }

    #[test]
    fn context_and_path_concatenate() {
        let text = b"abcdefgh abcdefgh abcdxyz";
        let lm = NgramLm::train(text, 4).unwrap();
        let mut a = lm.model().with_context(b"zzab");
        let mut b = lm.model().with_context(b"abcd");
        let path: Vec<TokenId> = b"cd".iter().map(|&x| x.into()).collect();
        assert_eq!(*a.full_probs(&path).unwrap(), *b.full_probs(&[]).unwrap());
    }

    #[test]
    fn cached_answers_equal_fresh_ones() {
        let text = b"let x = 1; let y = x + 2; let z = y * x; // done";
        let lm = NgramLm::train(text, 3).unwrap();
        let mut cached = lm.model().with_top_k(5).unwrap().with_context(b"le");
        let mut fresh = lm
            .model()
            .with_top_k(5)
            .unwrap()
            .with_cache_capacity(0)
            .with_context(b"le");
        let paths: Vec<Vec<TokenId>> = (0..60u32)
            .map(|i| vec![u32::from(text[i as usize % text.len()]); (i % 4) as usize])
            .collect();
        for path in paths.iter().chain(paths.iter().rev()) {
            let a = cached.next(path).unwrap().clone();
            assert_eq!(&a, fresh.next(path).unwrap());
        }
    }

    #[cfg(feature = "corpora")]
    #[test]
    fn heldout_entropy_is_sensible_and_falls_with_the_order() {
        // 200 KB of training text and 20 KB of held-out text keep this fast
        // in debug mode; the full-size figures are in the README.
        for corpus in crate::experiment::corpus::Corpus::ALL {
            let text = crate::experiment::corpus::load(corpus).unwrap();
            let heldout = &text.heldout[..20_000];
            let bits = |order: usize| {
                let lm = NgramLm::train(&text.train[..200_000], order).unwrap();
                lm.cross_entropy(heldout, 7).unwrap() / std::f64::consts::LN_2
            };
            let (h1, h2, h5) = (bits(1), bits(2), bits(5));
            println!("{}: {h1:.3} > {h2:.3} > {h5:.3} bits/byte", corpus.name());
            // A unigram model of English or code needs 4 to 6 bits per byte;
            // longer contexts help, and nothing real gets below 1.
            assert!((4.0..6.0).contains(&h1), "{h1}");
            assert!(h2 < h1 && h5 < h2 && h5 > 1.0, "{h1} {h2} {h5}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Random short texts over a small alphabet (so that contexts repeat),
        /// every order: the packed-table model equals the hash-map
        /// definition and sums to one after any history.
        #[test]
        fn random_texts_match_the_definition(
            text in proptest::collection::vec(0u8..4, 6..60),
            order in 1usize..=5,
            history in proptest::collection::vec(0u8..5, 0..8),
        ) {
            let text: Vec<u8> = text.iter().map(|&b| b'a' + b).collect();
            let history: Vec<u8> = history.iter().map(|&b| b'a' + b).collect();
            let lm = NgramLm::train(&text, order).unwrap();
            let mut probs = [0.0; VOCAB];
            lm.fill_probs(&history, &mut probs);
            let expected = brute_force(&text, order, &history);
            for w in 0..VOCAB {
                proptest::prop_assert!((probs[w] - expected[w]).abs() < 1e-12);
            }
            proptest::prop_assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn rejects_bad_training_input() {
        assert!(NgramLm::train(b"abc", 0).is_err());
        assert!(NgramLm::train(b"abc", MAX_ORDER + 1).is_err());
        assert!(NgramLm::train(b"ab", 3).is_err());
    }
}
