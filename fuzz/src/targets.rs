//! Fuzz target bodies. Each takes raw bytes, never panics on its own, and
//! asserts speclight's invariants; a panic is a bug in speclight.
//!
//! The same file is compiled by `tests/fuzz_replay.rs` in the main crate, so
//! the saved corpus in `fuzz/corpus/TARGET/` is replayed on stable Rust by
//! `cargo test`.

use arbitrary::{Arbitrary, Unstructured};
use rand::{rngs::StdRng, SeedableRng};
use speclight::bound::{check_with, CheckOptions, DualOptions};
use speclight::serve::{Accepted, VerifierInputs};
use speclight::{
    evaluate, parse_dist, Error, Iid, NextTokenModel, TokenDist, TokenId, TreeBuilder,
};

/// Slack for comparing sums of probabilities computed in different orders.
const EPS: f64 = 1e-9;

fn check_dist(d: &TokenDist) {
    assert!(!d.is_empty());
    assert!(
        d.probs().windows(2).all(|w| w[0] >= w[1]),
        "sorted descending"
    );
    assert!(d.probs().iter().all(|p| p.is_finite() && *p > 0.0));
    assert!(d.log_probs().iter().all(|l| !l.is_nan() && *l <= 0.0));
    assert!(d.listed_mass() <= 1.0 + speclight::SUM_TOLERANCE + EPS);
    let (h, m2) = (d.entropy(), d.second_log_moment());
    assert!(h.is_finite() && h >= -EPS, "entropy {h}");
    assert!(m2.is_finite() && m2 >= -EPS, "second log-moment {m2}");
    for (i, &t) in d.tokens().iter().enumerate() {
        assert_eq!(d.index_of(t), Some(i));
    }
}

/// Issue 12, item 2: a distribution is accepted only if every probability
/// it was given is at most 1 (within the sum tolerance); none is clamped.
fn assert_accepted_probs_at_most_one(given: &[f64]) {
    let limit = 1.0 + speclight::SUM_TOLERANCE;
    if let Some(p) = given.iter().find(|p| p.is_nan() || **p > limit) {
        panic!("accepted a probability {p:e} above 1 (given {given:?})");
    }
}

/// The numbers of a plain `0.5,0.3,0.2` spec, when every item is one.
fn listed_numbers(spec_text: &str) -> Option<Vec<f64>> {
    spec_text
        .split(',')
        .map(|item| item.trim().parse::<f64>().ok())
        .collect()
}

/// A special file as a reader sees it: `prefix`, then zero bytes forever
/// (`/dev/zero`), in short reads of varying size (a pipe). Reading more than
/// `budget` bytes panics: a reader that trusts the size of what it reads, or
/// skips to a newline that never comes, is caught instead of hanging.
pub struct EndlessZeros<'a> {
    prefix: &'a [u8],
    served: usize,
    budget: usize,
}

impl<'a> EndlessZeros<'a> {
    pub fn new(prefix: &'a [u8], budget: usize) -> Self {
        Self {
            prefix,
            served: 0,
            budget,
        }
    }
}

impl std::io::Read for EndlessZeros<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        assert!(
            self.served <= self.budget,
            "read {} bytes of an endless input: no limit applied",
            self.served
        );
        // Short reads, as a pipe gives: 1 to 4096 bytes, varying.
        let n = buf.len().min(1 + (self.served * 7 + 13) % 4096);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.prefix.get(self.served + i).copied().unwrap_or(0);
        }
        self.served += n;
        Ok(n)
    }
}

/// Which constructor a [`dist_from_floats`] case exercises.
#[derive(Debug, Arbitrary)]
enum Source {
    Probs,
    LogProbs,
    Logits { temperature: f64, top_k: Option<u8> },
}

/// Distribution construction from arbitrary floats: either a valid
/// distribution that satisfies every invariant, or an error.
pub fn dist_from_floats(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(source) = Source::arbitrary(&mut u) else {
        return;
    };
    let Ok(values) = Vec::<f64>::arbitrary(&mut u) else {
        return;
    };
    let Ok(raw_tokens) = Vec::<u16>::arbitrary(&mut u) else {
        return;
    };
    let values = &values[..values.len().min(512)];
    // Mostly distinct ids, but let duplicates through sometimes.
    let tokens: Vec<TokenId> = (0..values.len())
        .map(|i| {
            raw_tokens
                .get(i)
                .map_or(i as TokenId, |&t| TokenId::from(t))
        })
        .collect();
    let result = match source {
        Source::Probs => TokenDist::from_token_probs(&tokens, values),
        Source::LogProbs => TokenDist::from_token_logprobs(&tokens, values),
        Source::Logits { temperature, top_k } => {
            TokenDist::from_logits(&tokens, values, temperature, top_k.map(usize::from))
        }
    };
    if let Ok(d) = result {
        check_dist(&d);
        if matches!(source, Source::Probs) {
            assert_accepted_probs_at_most_one(values);
        }
    }
}

/// A distribution from arbitrary weights: always valid, possibly with a tail.
fn arbitrary_dist(u: &mut Unstructured) -> arbitrary::Result<TokenDist> {
    let n = u.int_in_range(1..=24usize)?;
    let weights: Vec<f64> = (0..n)
        .map(|_| u.int_in_range(1..=1000u32).map(f64::from))
        .collect::<arbitrary::Result<_>>()?;
    let mass = f64::from(u.int_in_range(1..=100u32)?) / 100.0;
    let total: f64 = weights.iter().sum();
    let probs: Vec<f64> = weights.iter().map(|w| w / total * mass).collect();
    Ok(TokenDist::from_probs(&probs).expect("normalised weights are valid"))
}

/// Build, evaluate and compare: the tree is valid and prefix-closed, within
/// `P` and `D`, and its value under any verifier is at most that verifier's
/// own optimum at the same `P` and `D`.
pub fn build_eval_check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(draft) = arbitrary_dist(&mut u) else {
        return;
    };
    let Ok(verify) = arbitrary_dist(&mut u) else {
        return;
    };
    let Ok(capacity) = u.int_in_range(0..=1024usize) else {
        return;
    };
    let Ok(depth) = Option::<u8>::arbitrary(&mut u) else {
        return;
    };
    let depth = depth.map(u32::from);
    let builder = TreeBuilder::new(capacity).and_then(|b| b.with_max_depth(depth));
    let mut builder = match builder {
        Ok(b) => b,
        Err(Error::ZeroCapacity | Error::ZeroDepth) => return,
        Err(e) => panic!("unexpected error {e}"),
    };
    let (mut drafter, mut verifier) = (Iid::new(draft), Iid::new(verify));
    let tree = builder
        .build_owned(&mut drafter)
        .expect("iid models never fail");
    tree.validate().expect("built trees are valid");
    assert!(tree.len() <= capacity);
    assert!(depth.is_none_or(|d| tree.max_depth() <= d));
    let value = evaluate(&tree, &mut verifier)
        .expect("evaluates")
        .expected_accepted;
    builder.build(&mut verifier).expect("builds");
    let opt = builder.opt_curve().last().copied().unwrap_or(0.0);
    assert!(value.is_finite() && opt.is_finite());
    assert!(value <= opt + EPS, "E[X] {value} above OPT {opt}");
    assert!(opt <= capacity as f64 + EPS);
    // The certificate: an independent enumeration, the dual and the closed
    // forms, whose chain E[X] <= OPT <= U <= B2 <= B1 <= paper must hold.
    let opts = CheckOptions {
        dual: DualOptions::default().with_max_depth(depth),
        ..CheckOptions::default()
    };
    let cert = check_with(&tree, &mut verifier, capacity, &opts).expect("the chain holds");
    assert!(cert.certified);
    assert!((cert.optimal_expected_accepted - opt).abs() <= 1e-9 * opt.max(1.0));
    let bounds = [
        cert.renewal_bound_optimized,
        cert.renewal_bound,
        cert.paper_bound,
    ];
    for bound in bounds.into_iter().flatten() {
        assert!(bound.value().is_finite());
        assert!(
            opt <= bound.value() + 1e-9 * opt.max(1.0),
            "OPT {opt} above {bound:?}"
        );
    }
}

/// A context-dependent model: one of a few distributions, chosen by a hash
/// of the path.
struct Mixture(Vec<TokenDist>);

impl NextTokenModel for Mixture {
    fn next(&mut self, path: &[TokenId]) -> speclight::Result<&TokenDist> {
        let h = path.iter().fold(path.len(), |h, &t| {
            h.wrapping_mul(31).wrapping_add(t as usize)
        });
        Ok(&self.0[h % self.0.len()])
    }
}

/// One call on the incremental builder.
#[derive(Debug, Arbitrary)]
enum Call {
    NextBatch(u8),
    /// Feed the batch's `i`-th node (or an arbitrary index).
    Feed {
        pick: u16,
        honest: bool,
    },
    Finish,
}

/// The incremental builder under arbitrary interleavings of calls: misuse
/// gets an error, never a panic; an honest run gives the value of `build`.
pub fn incremental_builder(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(n) = u.int_in_range(1..=4usize) else {
        return;
    };
    let Ok(dists) = (0..n)
        .map(|_| arbitrary_dist(&mut u))
        .collect::<arbitrary::Result<Vec<_>>>()
    else {
        return;
    };
    let Ok(capacity) = u.int_in_range(1..=512usize) else {
        return;
    };
    let Ok(calls) = Vec::<Call>::arbitrary(&mut u) else {
        return;
    };
    let mut model = Mixture(dists);
    let mut builder = TreeBuilder::new(capacity).expect("capacity in range");
    let reference = builder.build_owned(&mut model).expect("builds");
    let want = evaluate(&reference, &mut model)
        .expect("evaluates")
        .expected_accepted;
    let root = model.next(&[]).expect("root").clone();
    let mut inc = builder.begin(&root);
    let mut batch: Vec<usize> = Vec::new();
    let mut path = Vec::new();
    let mut honest_so_far = true;
    for call in calls.iter().take(10_000) {
        match call {
            Call::NextBatch(w) => match inc.next_batch(usize::from(*w)) {
                Ok(b) => batch = b.to_vec(),
                Err(Error::InvalidArgument(_) | Error::BuilderState(_)) => {}
                Err(e) => panic!("unexpected error {e}"),
            },
            Call::Feed { pick, honest } => {
                let node = if *honest && !batch.is_empty() {
                    batch[usize::from(*pick) % batch.len()]
                } else {
                    honest_so_far = false;
                    usize::from(*pick)
                };
                if node < inc.tree().len() {
                    inc.tree().path_tokens(node, &mut path);
                } else {
                    path.clear();
                }
                let dist = model.next(&path).expect("model").clone();
                let _ = inc.feed(node, &dist);
            }
            Call::Finish => break,
        }
    }
    // Drive honestly to the end, then finish.
    loop {
        let Ok(b) = inc.next_batch(3) else {
            // Unfed nodes from the arbitrary phase: feed them honestly.
            let pending: Vec<usize> = batch.clone();
            for node in pending {
                inc.tree().path_tokens(node, &mut path);
                let dist = model.next(&path).expect("model").clone();
                let _ = inc.feed(node, &dist);
            }
            continue;
        };
        batch = b.to_vec();
        if batch.is_empty() {
            break;
        }
        for &node in &batch {
            inc.tree().path_tokens(node, &mut path);
            let dist = model.next(&path).expect("model").clone();
            inc.feed(node, &dist).expect("requested node");
        }
    }
    let tree = inc.finish().expect("all fed").clone();
    tree.validate().expect("valid");
    let got = evaluate(&tree, &mut model)
        .expect("evaluates")
        .expected_accepted;
    if honest_so_far {
        assert!(
            (got - want).abs() <= EPS * want.max(1.0),
            "incremental {got} vs build {want}"
        );
    } else {
        // A dishonest feed (a distribution for the wrong node) can only be
        // refused; the build stays optimal over what it was told.
        assert!(got <= capacity as f64 + EPS);
    }
}

/// Every text parser: the result is an error or a valid object.
pub fn parse_inputs(data: &[u8]) {
    use speclight::capacity::LatencyProfile;
    use speclight::format::{from_rank_paths, parse_medusa_choices, parse_vllm_tree, TreeJson};
    use speclight::trace::{read_jsonl, ReadLimits};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 7 == 6 {
        // Traces are read from bytes: non-UTF-8 must be an error too.
        let limits = ReadLimits {
            max_records: 10_000,
            max_line_bytes: 4096,
        };
        if let Ok(trace) = read_jsonl(rest, &limits) {
            for t in trace.sequences().iter().flatten() {
                assert!(t.logprob() <= 0.0 && t.logprob().is_finite());
            }
        }
        // The same bytes followed by /dev/zero through a pipe: refused
        // after at most one over-long line, never read to the end.
        let budget = rest.len() + limits.max_line_bytes + (64 << 10);
        let endless = std::io::BufReader::new(EndlessZeros::new(rest, budget));
        assert!(read_jsonl(endless, &limits).is_err());
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let check_paths = |paths: Vec<Vec<u32>>| {
        if let Ok(tree) = from_rank_paths(&paths, Some(64)) {
            tree.validate().expect("trees from rank paths are valid");
            assert_eq!(tree.len(), paths.len());
        }
    };
    match which % 7 {
        // `@FILE` would read the file system: not this target's business.
        0 if !text.trim_start().starts_with('@') => {
            if let Ok(d) = parse_dist(text) {
                check_dist(&d);
                if let Some(given) = listed_numbers(text) {
                    assert_accepted_probs_at_most_one(&given);
                }
            }
        }
        1 => {
            if let Ok(tree) = TreeJson::parse_tree(text) {
                tree.validate().expect("parsed trees are valid");
            }
        }
        2 => {
            if let Ok(paths) = parse_medusa_choices(text) {
                check_paths(paths);
            }
        }
        3 => {
            if let Ok(paths) = parse_vllm_tree(text) {
                check_paths(paths);
            }
        }
        4 | 5 => {
            let profile = if which % 7 == 4 {
                LatencyProfile::from_csv_str(text)
            } else {
                LatencyProfile::from_json_str(text)
            };
            if let Ok(p) = profile {
                for n in [0usize, 1, 7, 1 << 20] {
                    let t = p.at(n);
                    assert!(t.is_finite() && t >= 0.0, "latency {t} at {n}");
                }
            }
        }
        _ => {}
    }
}

/// The verification walk with arbitrary verifier outputs: a length mismatch
/// is an error; otherwise the accepted path follows the tree and every
/// accepted token is the verifier's choice at its parent's position.
pub fn verification_walk(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(draft) = arbitrary_dist(&mut u) else {
        return;
    };
    let Ok(capacity) = u.int_in_range(1..=256usize) else {
        return;
    };
    let Ok(context_len) = u.int_in_range(0..=8usize) else {
        return;
    };
    let Ok(chosen) = Vec::<u8>::arbitrary(&mut u) else {
        return;
    };
    let Ok(seed) = u64::arbitrary(&mut u) else {
        return;
    };
    let tree = TreeBuilder::new(capacity)
        .and_then(|mut b| b.build_owned(&mut Iid::new(draft)))
        .expect("builds");
    let mut inputs = VerifierInputs::new();
    if inputs.fill(&tree, context_len, 0).is_err() {
        assert_eq!(context_len, 0, "fill only refuses an empty context here");
        return;
    }
    let n = inputs.num_positions();
    let chosen: Vec<TokenId> = chosen.iter().map(|&c| TokenId::from(c % 32)).collect();
    let mut out = Accepted::new();
    match inputs.walk_chosen(&chosen, &mut out) {
        Err(_) => assert_ne!(chosen.len(), n, "only a length mismatch is refused"),
        Ok(()) => {
            assert_eq!(chosen.len(), n);
            let mut at = 0usize; // tree position of the root
            for (&node, &token) in out.nodes().iter().zip(out.tokens()) {
                assert_eq!(tree.token(node), token);
                assert_eq!(
                    chosen[at], token,
                    "accepted a token the verifier did not choose"
                );
                at = node + 1;
            }
            assert_eq!(chosen[at], out.bonus());
        }
    }
    // The sampling walk, with complete distributions of the right length.
    let complete = TokenDist::from_probs(&[0.5, 0.3, 0.2]).expect("valid");
    let dists = vec![complete; n];
    let mut rng = StdRng::seed_from_u64(seed);
    inputs
        .walk_sampled(&dists, &mut rng, &mut out)
        .expect("right length, complete distributions");
    assert!(out.tokens().len() <= tree.max_depth() as usize);
}

/// Real-workload inputs (issue 5): OpenAI logprobs JSON from arbitrary
/// bytes (a trace that round-trips through the JSONL writer and reader, or
/// an error), and n-gram models trained on arbitrary bytes, whose
/// distributions sum to one after any history.
pub fn workload_inputs(data: &[u8]) {
    use speclight::trace::{read_jsonl, ReadLimits};
    use speclight::trace::{read_openai, write_jsonl};
    use speclight::NgramLm;
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(t) = read_openai(text) {
            assert!(t.trace.num_tokens() > 0);
            for tok in t.trace.sequences().iter().flatten() {
                assert!(tok.logprob() <= 0.0 && (tok.token() as usize) < t.vocab.len());
            }
            let mut out = Vec::new();
            write_jsonl(&t.trace, &mut out).expect("writing to memory");
            let back = read_jsonl(&out[..], &ReadLimits::default()).expect("own output reads");
            assert_eq!(back.num_tokens(), t.trace.num_tokens());
        }
        return;
    }
    let order = usize::from(which / 2 % 9);
    let (text, history) = rest.split_at(rest.len() / 2);
    if let Ok(lm) = NgramLm::train(text, order) {
        let mut probs = [0.0; speclight::model::ngram::VOCAB];
        lm.fill_probs(history, &mut probs);
        let sum: f64 = probs.iter().sum();
        assert!((sum - 1.0).abs() < EPS, "n-gram probabilities sum to {sum}");
        assert!(probs.iter().all(|&p| p > 0.0));
    }
}

/// The paired-trace reader and the tuner on arbitrary bytes: a validation
/// report (never a panic), and for a trace that validates, a tuning report
/// or a specific error. Inputs starting with `0` also run the tuner on the
/// bytes followed by `/dev/zero` through a pipe: an error, read to a limit.
pub fn paired_trace(data: &[u8]) {
    use speclight::tune::{tune, validate, TuneConfig};
    if data.first() == Some(&b'0') {
        let budget = data.len() + speclight::tune::DEFAULT_MAX_LINE_BYTES + (64 << 10);
        let open = || Ok(std::io::BufReader::new(EndlessZeros::new(data, budget)));
        let config = TuneConfig {
            capacities: vec![1, 4],
            bootstrap: 0,
            ..TuneConfig::default()
        };
        assert!(tune(open, &config).is_err());
    }
    let report = validate(data, 16).expect("reading a byte slice cannot fail");
    assert!(report.good_records <= report.lines);
    if !report.is_valid() {
        return;
    }
    let config = TuneConfig {
        capacities: vec![1, 4, 16],
        bootstrap: 0,
        ..TuneConfig::default()
    };
    if let Ok(r) = tune(|| Ok(data), &config) {
        let text = format!("{r:?}");
        assert!(!text.contains("NaN"), "NaN in a tuning report");
    }
}

/// Server metrics in every format (`metrics::read` detects it by content):
/// an error, or counts that validate and fit into probabilities with
/// ordered intervals and a chain value equal to the server's mean.
pub fn metrics_inputs(data: &[u8]) {
    use speclight::metrics::{fit, fit_totals, read, ServerMetrics};
    let Some((&draft_length, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match read(text) {
        Err(_) => {}
        Ok(ServerMetrics::PerPosition(counts)) => {
            counts.validate().expect("read returns valid counts");
            let f = fit(&counts, 1.96).expect("valid counts fit");
            for d in &f.acceptance_by_depth {
                assert!((0.0..=1.0).contains(&d.estimate), "{d:?}");
                assert!(d.ci_low <= d.estimate && d.estimate <= d.ci_high, "{d:?}");
                assert!(d.ci_low >= 0.0 && d.ci_high <= 1.0, "{d:?}");
            }
            let tolerance = 1e-9 * (1.0 + f.mean_accepted);
            assert!(f.mean_accepted.is_finite() && f.mean_accepted >= 0.0);
            assert!((f.chain_expected_accepted - f.mean_accepted).abs() <= tolerance);
        }
        Ok(ServerMetrics::Totals(totals)) => {
            // A draft length of 0 must be refused, never divided by.
            if let Ok(f) = fit_totals(&totals, Some(usize::from(draft_length % 9))) {
                assert!((0.0..=1.0).contains(&f.acceptance_rate));
                if let Some(c) = f.constant_depth {
                    assert!((0.0..=1.0).contains(&c.acceptance_per_depth), "{c:?}");
                    let tolerance = 1e-6 * (1.0 + c.mean_accepted);
                    assert!((c.chain_expected_accepted - c.mean_accepted).abs() <= tolerance);
                }
            }
        }
    }
}
