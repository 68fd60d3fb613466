//! The crate's single error type.
//!
//! Every fallible entry point returns [`Result`]. Variants carry the offending
//! values so that a caller (or the CLI's one-line message) can say exactly what
//! was wrong without a backtrace. Messages are lower-case, as std's are.

use thiserror::Error;

/// Everything that can go wrong in speclight.
///
/// The enum is `#[non_exhaustive]`: later versions add variants for new inputs.
///
/// # Examples
///
/// ```
/// use speclight::{Error, TokenDist};
/// let err = TokenDist::from_probs(&[0.5, f64::NAN]).unwrap_err();
/// assert!(matches!(err, Error::NotFinite { index: 1, .. }));
/// ```
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A distribution was given no entries.
    #[error("empty distribution: at least one token is required")]
    EmptyDistribution,
    /// A probability, log-probability or logit was NaN or infinite.
    #[error("value {value} at index {index} is not finite")]
    NotFinite {
        /// Position of the value in the input.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// A probability was negative.
    #[error("probability {value} at index {index} is negative")]
    NegativeProbability {
        /// Position of the value in the input.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// A log-probability was positive (a probability above 1).
    #[error("log-probability {value} at index {index} is above 0")]
    PositiveLogProb {
        /// Position of the value in the input.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// Probabilities summed to more than 1 beyond the tolerance.
    #[error("probabilities sum to {sum}, above 1 + {tolerance}")]
    SumAboveOne {
        /// The sum found.
        sum: f64,
        /// The tolerance allowed ([`crate::SUM_TOLERANCE`]).
        tolerance: f64,
    },
    /// Probabilities summed to less than 1 where a full distribution is required.
    #[error(
        "probabilities sum to {sum}, below 1 - {tolerance}: a full distribution is required here"
    )]
    SumBelowOne {
        /// The sum found.
        sum: f64,
        /// The tolerance allowed ([`crate::SUM_TOLERANCE`]).
        tolerance: f64,
    },
    /// All probabilities were zero.
    #[error("every probability is zero")]
    ZeroMass,
    /// The same token id appeared twice in one distribution.
    #[error("token id {token} appears more than once")]
    DuplicateToken {
        /// The repeated token id.
        token: u32,
    },
    /// Token ids and values had different lengths.
    #[error("{tokens} token ids but {values} values")]
    LengthMismatch {
        /// Number of token ids.
        tokens: usize,
        /// Number of values.
        values: usize,
    },
    /// A sampling temperature was not a positive finite number.
    #[error("temperature {0} is not a positive finite number")]
    BadTemperature(f64),
    /// `top_k` was zero.
    #[error("top-k must be at least 1")]
    ZeroTopK,
    /// A capacity of zero draft tokens.
    #[error("capacity must be at least 1")]
    ZeroCapacity,
    /// A capacity above [`crate::MAX_CAPACITY`].
    #[error("capacity {capacity} is above the maximum {max}")]
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
        /// The documented maximum.
        max: usize,
    },
    /// A depth limit of zero.
    #[error("depth limit must be at least 1")]
    ZeroDepth,
    /// A tree broke one of its invariants.
    #[error("invalid tree: node {node}: {reason}")]
    InvalidTree {
        /// Index of the first offending node.
        node: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A positional acceptance vector was invalid.
    #[error("invalid acceptance vector: {0}")]
    InvalidAcceptance(String),
    /// A distribution spec (`0.5,0.3`, `zipf:S:N`, ...) could not be parsed.
    #[error("invalid distribution spec {spec:?}: {reason}")]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// Why it was refused.
        reason: String,
    },
    /// A model could not supply a distribution for a prefix.
    #[error("model error: {0}")]
    Model(String),
    /// The incremental builder was driven out of order.
    #[error("incremental builder misuse: {0}")]
    BuilderState(String),
    /// The verification walk or Monte-Carlo simulation was given bad arguments.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file or string could not be parsed.
    #[error("parse error: {0}")]
    Parse(String),
    /// A latency profile had no points.
    #[error("empty latency profile: at least one (draft_tokens, seconds) point is required")]
    EmptyLatencyProfile,
    /// A latency profile's token counts were not increasing.
    #[error(
        "latency profile token counts must increase: {tokens} at point {index} follows {previous}"
    )]
    LatencyTokensNotIncreasing {
        /// Row of the offending point (0-based, header excluded).
        index: usize,
        /// Its token count.
        tokens: u64,
        /// The token count of the row before.
        previous: u64,
    },
    /// A latency profile listed the same token count twice.
    #[error("latency profile lists {tokens} draft tokens twice (points {first} and {second}, counted from 0)")]
    DuplicateLatencyPoint {
        /// The repeated token count.
        tokens: u64,
        /// Row of its first occurrence.
        first: usize,
        /// Row of its second occurrence.
        second: usize,
    },
    /// A latency (seconds) was negative, NaN or infinite.
    #[error("latency {seconds} s at point {index} is not a finite number >= 0")]
    InvalidLatency {
        /// Row of the offending point.
        index: usize,
        /// The value itself.
        seconds: f64,
    },
    /// A verifier latency was positive but below [`crate::capacity::MIN_VERIFIER_SECONDS`]
    /// (or zero): tokens per second would overflow to infinity and speedup ratios to NaN.
    #[error("verifier latency {seconds:e} s at point {index} is below {min:e} s: tokens per second would overflow (is the unit seconds?)")]
    LatencyTooSmall {
        /// Row of the offending point (0-based, header excluded).
        index: usize,
        /// The value itself.
        seconds: f64,
        /// The floor.
        min: f64,
    },
    /// A two-axis latency profile's batch sizes were zero or decreasing.
    #[error("latency profile batch size {batch_size} at point {index} {reason}")]
    LatencyBatchSize {
        /// Row of the offending point (0-based, header excluded).
        index: usize,
        /// Its batch size.
        batch_size: u64,
        /// Why it is refused ("is 0", "follows 8").
        reason: String,
    },
    /// Server acceptance metrics were missing, negative or inconsistent.
    #[error("metrics: {0}")]
    Metrics(String),
    /// A batch allocation's budget, minimums and caps cannot be met together.
    #[error("infeasible allocation: {0}")]
    InfeasibleAllocation(String),
    /// A per-position input (verifier tokens, distributions, an output
    /// buffer) does not match the size of the tree it is used with.
    #[error("{what} has length {got}, expected {expected}")]
    InputLength {
        /// Which input.
        what: &'static str,
        /// Length the tree requires.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A rank path (Medusa choice, vLLM tree tuple) is empty: the root is implicit.
    #[error("rank path at index {index} is empty: the root is implicit and not listed")]
    EmptyRankPath {
        /// Position of the path in the list.
        index: usize,
    },
    /// A rank path whose parent path is not in the list (the tree has a gap).
    #[error("rank path {path:?} has no parent path {parent:?} in the list")]
    MissingParentPath {
        /// The path.
        path: Vec<u32>,
        /// Its missing parent.
        parent: Vec<u32>,
    },
    /// The same rank path appears twice.
    #[error("rank path {path:?} appears more than once")]
    DuplicateRankPath {
        /// The repeated path.
        path: Vec<u32>,
    },
    /// A rank at or beyond the allowed vocabulary / top-k size.
    #[error("rank {rank} in path {path:?} is not below the limit {limit}")]
    RankOutOfRange {
        /// The path holding it.
        path: Vec<u32>,
        /// The rank.
        rank: u32,
        /// The limit (vocabulary or top-k size).
        limit: usize,
    },
    /// A tree's root-to-node paths are too long in total for an output that
    /// spells out every path (rank paths) or indents every node by its depth
    /// (the CLI's text tree): their size grows with the square of the depth.
    #[error(
        "the tree's root-to-node paths hold {total} tokens in all, above the limit of {max} \
         for rank paths and the text tree (their size grows with the square of the depth); \
         write it as JSON or DOT instead"
    )]
    PathsTooLong {
        /// The sum of the nodes' depths.
        total: u64,
        /// The limit, [`crate::format::MAX_TOTAL_PATH_LENGTH`].
        max: u64,
    },
    /// Input bytes were not UTF-8.
    #[error("input is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// An input file was larger than [`crate::MAX_INPUT_BYTES`].
    #[error("input of {bytes} bytes is above the limit of {max} bytes")]
    InputTooLarge {
        /// Size of the input.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The dual-certificate enumeration would visit more nodes than allowed.
    #[error("dual certificate enumeration exceeded the node limit {limit} (lambda {lambda})")]
    NodeLimit {
        /// The configured limit.
        limit: usize,
        /// The `lambda` being enumerated.
        lambda: f64,
    },
    /// A link of the certificate chain (docs/THEORY.md section 4c) does not hold.
    #[error("certificate chain violated at {link}: {left} vs {right}")]
    ChainViolated {
        /// The link, e.g. `"E[X](T) <= OPT(P)"`.
        link: String,
        /// Its left-hand number.
        left: f64,
        /// Its right-hand number.
        right: f64,
    },
    /// A line of a trace file is malformed or exceeds a limit.
    #[error("trace line {line}: {reason}")]
    TraceLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A trace cannot give a speed-of-light estimate (too short, zero entropy).
    #[error("trace refused: {0}")]
    TraceRefused(String),
    /// No configuration of a server can use the capacity asked for.
    #[error(
        "no {server} configuration fills capacity {capacity}: at most {max} draft tokens ({why})"
    )]
    CapacityUnfillable {
        /// The server's name.
        server: &'static str,
        /// The capacity asked for.
        capacity: usize,
        /// The most draft tokens any of its configurations uses.
        max: u64,
        /// The limits that bound it.
        why: String,
    },
    /// Reading an input failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// A size an input sets (a flag such as `--prompts` or `--tokens`) is
    /// above its documented limit ([`crate::experiment::limits`]).
    #[error("{what} {value} is above the limit of {max}")]
    SizeAboveLimit {
        /// What the size counts.
        what: &'static str,
        /// The size asked for.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// An input with no size known in advance (a pipe, a character device
    /// such as `/dev/zero`) went on past [`crate::MAX_INPUT_BYTES`];
    /// reading stopped there.
    #[error("input is longer than the limit of {max} bytes")]
    InputTooLong {
        /// The limit.
        max: u64,
    },
}

/// Shorthand for `std::result::Result<T, speclight::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
