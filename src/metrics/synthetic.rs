//! A simulated chain run on real models (the bundled n-gram pair in the
//! tests), written in every server format, with its true per-depth
//! acceptance: the reference the fit is checked against.

use crate::dist::TokenId;
use crate::error::{Error, Result};
use crate::model::ContextModel;
use crate::DraftTree;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::json;
use std::fmt::Write;

/// Most steps one simulated run may take.
pub const MAX_SIM_STEPS: usize = 1 << 24;

/// What [`SimulatedChain::run`] recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedChain {
    /// The chain length `K` drafted every step.
    pub draft_length: usize,
    /// Accepted draft tokens of each step, in order.
    pub accepted: Vec<u32>,
    /// `true_reach[d - 1]`: the mean over steps of the verifier's exact
    /// `P(X >= d)` for the chain drafted there (docs/THEORY.md section 2),
    /// the quantity the observed `reached[d - 1] / steps` estimates.
    pub true_reach: Vec<f64>,
}

impl SimulatedChain {
    /// Runs `steps` rounds: the drafter proposes its rank-0 chain of `k`
    /// tokens at the current text, the verifier samples token by token
    /// (seeded) and accepts while it matches, and the accepted tokens plus
    /// the bonus token are appended. Time O(steps k) calls of each model.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `k == 0`, no steps, more than
    /// [`MAX_SIM_STEPS`] or an empty prompt; [`Error::Model`] when a draw
    /// falls in the verifier's truncated tail; whatever the models return.
    pub fn run<D, V>(
        drafter: &mut D,
        verifier: &mut V,
        prompt: &[TokenId],
        k: usize,
        steps: usize,
        seed: u64,
    ) -> Result<Self>
    where
        D: ContextModel + ?Sized,
        V: ContextModel + ?Sized,
    {
        Self::run_valuing(drafter, verifier, prompt, (k, steps, seed), &[]).map(|(run, _)| run)
    }

    /// [`SimulatedChain::run`] with `(k, steps, seed)`, also valuing rank
    /// trees (token = the drafter's rank at the node, as
    /// [`crate::deploy::RankAcceptance`] builds them) at every step's text:
    /// returns each tree's exact `E[X] = sum_v prod_j q(t_j)` under the
    /// verifier `q`, averaged over the steps: the truth a prediction from
    /// the first choice alone can be compared with. The run itself (draws,
    /// texts) is the same as without trees. Time O(steps (k + sum |T|))
    /// calls of each model.
    ///
    /// # Errors
    ///
    /// As [`SimulatedChain::run`].
    pub fn run_valuing<D, V>(
        drafter: &mut D,
        verifier: &mut V,
        prompt: &[TokenId],
        (k, steps, seed): (usize, usize, u64),
        trees: &[DraftTree],
    ) -> Result<(Self, Vec<f64>)>
    where
        D: ContextModel + ?Sized,
        V: ContextModel + ?Sized,
    {
        if k == 0 || steps == 0 || steps > MAX_SIM_STEPS || prompt.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "simulated chain needs k >= 1, 1..={MAX_SIM_STEPS} steps and a prompt (k = {k}, steps = {steps})"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut text = prompt.to_vec();
        let mut chain: Vec<TokenId> = Vec::with_capacity(k);
        let mut values = vec![0.0; trees.len()];
        let mut run = Self {
            draft_length: k,
            accepted: Vec::with_capacity(steps),
            true_reach: vec![0.0; k],
        };
        for _ in 0..steps {
            drafter.set_context(&text)?;
            verifier.set_context(&text)?;
            for (value, tree) in values.iter_mut().zip(trees) {
                *value += rank_tree_value(drafter, verifier, tree)?;
            }
            chain.clear();
            for _ in 0..k {
                let token = drafter.next(&chain)?.tokens()[0];
                chain.push(token);
            }
            let (accepted, bonus) = run.verify(verifier, &chain, &mut rng)?;
            text.extend_from_slice(&chain[..accepted]);
            text.push(bonus);
            run.accepted.push(accepted as u32);
        }
        for r in run.true_reach.iter_mut().chain(values.iter_mut()) {
            *r /= steps as f64;
        }
        Ok((run, values))
    }

    /// Walks the chain with verifier draws; adds the exact reach of every
    /// depth to `true_reach`. Returns (accepted, bonus token).
    fn verify<V: ContextModel + ?Sized>(
        &mut self,
        verifier: &mut V,
        chain: &[TokenId],
        rng: &mut StdRng,
    ) -> Result<(usize, TokenId)> {
        let tail = || Error::Model("the verifier's draw fell in its truncated tail".into());
        let mut reach = 1.0;
        let mut accepted: Option<(usize, TokenId)> = None;
        for d in 0..=chain.len() {
            let dist = verifier.next(&chain[..d])?;
            if accepted.is_none() {
                let y = dist.sample(rng).ok_or_else(tail)?;
                if d == chain.len() || y != chain[d] {
                    accepted = Some((d, y));
                }
            }
            if d < chain.len() {
                reach *= dist.prob_of(chain[d]);
                self.true_reach[d] += reach;
            }
        }
        accepted.ok_or_else(tail)
    }

    /// The true conditional acceptance `a_d = reach_d / reach_{d-1}`.
    pub fn true_acceptance(&self) -> Vec<f64> {
        let mut previous = 1.0;
        self.true_reach
            .iter()
            .map(|&r| {
                let a = if previous > 0.0 { r / previous } else { 0.0 };
                previous = r;
                a
            })
            .collect()
    }

    /// `h[i]`: steps (within `range`) that accepted exactly `i` tokens.
    fn histogram(&self, range: std::ops::Range<usize>) -> Vec<u64> {
        let mut h = vec![0u64; self.draft_length + 1];
        for &a in &self.accepted[range] {
            h[a as usize] += 1;
        }
        h
    }

    /// Accepted draft tokens over the steps in `range`.
    fn accepted_in(&self, range: std::ops::Range<usize>) -> u64 {
        self.accepted[range].iter().map(|&a| u64::from(a)).sum()
    }

    /// `[0, n)` split into `parts` consecutive non-empty ranges (fewer if `n < parts`).
    fn split(&self, parts: usize) -> Vec<std::ops::Range<usize>> {
        let n = self.accepted.len();
        let parts = parts.clamp(1, n);
        (0..parts)
            .map(|i| i * n / parts..(i + 1) * n / parts)
            .collect()
    }

    /// Prometheus text as vLLM's `/metrics` writes it (`prefix` `vllm:`)
    /// or llama-server's (`llamacpp:`), the steps split over two engines.
    pub fn to_prometheus(&self, prefix: &str) -> String {
        let mut out = String::new();
        let engines = self.split(2);
        let counters: [(&str, &str); 3] = [
            ("spec_decode_num_drafts", "Number of spec decoding drafts."),
            ("spec_decode_num_draft_tokens", "Number of draft tokens."),
            (
                "spec_decode_num_accepted_tokens",
                "Number of accepted tokens.",
            ),
        ];
        for (c, (name, help)) in counters.iter().enumerate() {
            let _ = writeln!(out, "# HELP {prefix}{name}_total {help}");
            let _ = writeln!(out, "# TYPE {prefix}{name}_total counter");
            for (e, range) in engines.iter().enumerate() {
                let steps = range.len() as u64;
                let value = match c {
                    0 => steps,
                    1 => steps * self.draft_length as u64,
                    _ => self.accepted_in(range.clone()),
                };
                let _ = writeln!(
                    out,
                    "{prefix}{name}_total{{engine=\"{e}\",model_name=\"speclight-sim\"}} {value}.0"
                );
            }
        }
        let name = format!("{prefix}spec_decode_num_accepted_tokens_per_pos_total");
        let _ = writeln!(out, "# HELP {name} Accepted tokens per draft position.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (e, range) in engines.iter().enumerate() {
            let h = self.histogram(range.clone());
            for pos in 0..self.draft_length {
                let reached: u64 = h[pos + 1..].iter().sum();
                let _ = writeln!(
                    out,
                    "{name}{{engine=\"{e}\",model_name=\"speclight-sim\",position=\"{pos}\"}} {reached}.0"
                );
            }
        }
        out
    }

    /// Prometheus text as mistral.rs writes it: its four counter names,
    /// no labels but `position`, and no series for a position never
    /// accepted.
    pub fn to_mistralrs_prometheus(&self) -> String {
        let h = self.histogram(0..self.accepted.len());
        let steps = self.accepted.len() as u64;
        let accepted = self.accepted_in(0..self.accepted.len());
        let totals = [
            ("drafts", steps),
            ("draft_tokens_proposed", steps * self.draft_length as u64),
            ("draft_tokens_accepted", accepted),
        ];
        let mut out = String::new();
        for (name, value) in totals {
            let _ = writeln!(out, "# TYPE mistralrs_speculative_{name}_total counter");
            let _ = writeln!(out, "mistralrs_speculative_{name}_total {value}");
        }
        let name = "mistralrs_speculative_draft_tokens_accepted_per_pos_total";
        let _ = writeln!(out, "# TYPE {name} counter");
        for pos in 0..self.draft_length {
            let reached: u64 = h[pos + 1..].iter().sum();
            if reached > 0 {
                let _ = writeln!(out, "{name}{{position=\"{pos}\"}} {reached}");
            }
        }
        out
    }

    /// llama-server `/completion` responses (JSON Lines), the steps split
    /// over `requests`: `timings.draft_n` (drafted tokens) and
    /// `timings.draft_n_accepted`, and `predicted_n` = accepted + one token
    /// per step. The times are zeros: the run has none.
    pub fn to_llamacpp_timings(&self, requests: usize) -> String {
        let k = self.draft_length as u64;
        self.split(requests)
            .into_iter()
            .map(|range| {
                let steps = range.len() as u64;
                let accepted = self.accepted_in(range);
                json!({
                    "content": "",
                    "stop": true,
                    "tokens_predicted": accepted + steps,
                    "timings": {
                        "prompt_n": 64, "prompt_ms": 0.0,
                        "predicted_n": accepted + steps, "predicted_ms": 0.0,
                        "draft_n": steps * k,
                        "draft_n_accepted": accepted,
                    },
                })
                .to_string()
                    + "\n"
            })
            .collect()
    }

    /// TensorRT-LLM `/perf_metrics` (one JSON array), the steps split over
    /// `requests`; times and KV-cache counts are zeros.
    pub fn to_trtllm_perf_metrics(&self, requests: usize) -> String {
        let k = self.draft_length as u64;
        let items: Vec<serde_json::Value> = self
            .split(requests)
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                let steps = range.len() as u64;
                let accepted = self.accepted_in(range);
                json!({
                    "request_id": i,
                    "perf_metrics": {
                        "first_iter": 0, "last_iter": steps,
                        "timing_metrics": {"arrival_time": 0.0, "first_token_time": 0.0, "last_token_time": 0.0},
                        "kv_cache_metrics": {"num_total_allocated_blocks": 0, "num_new_allocated_blocks": 0,
                                             "num_reused_blocks": 0, "num_missed_blocks": 0},
                        "speculative_decoding": {
                            "acceptance_rate": accepted as f64 / (steps * k) as f64,
                            "total_accepted_draft_tokens": accepted,
                            "total_draft_tokens": steps * k,
                        },
                    },
                })
            })
            .collect();
        serde_json::Value::Array(items).to_string() + "\n"
    }

    /// vLLM per-request responses (JSON Lines), the steps split over `requests`.
    pub fn to_vllm_requests(&self, requests: usize) -> String {
        let k = self.draft_length as u64;
        self.split(requests)
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                let h = self.histogram(range.clone());
                let steps = range.len() as u64;
                let accepted = self.accepted_in(range);
                json!({
                    "id": format!("cmpl-{i}"),
                    "choices": [{"index": 0, "text": ""}],
                    "metrics": {"speculative_decoding": {
                        "mean_acceptance_length": 1.0 + accepted as f64 / steps as f64,
                        "draft_acceptance_rate": accepted as f64 / (steps * k) as f64,
                        "acceptance_histogram": h,
                        "num_spec_steps": steps,
                        "num_accepted_draft_tokens": accepted,
                        "num_draft_tokens": steps * k,
                        "num_spec_tokens": k,
                    }},
                })
                .to_string()
                    + "\n"
            })
            .collect()
    }

    /// SGLang `/generate` responses (JSON Lines), the steps split over `requests`.
    pub fn to_sglang(&self, requests: usize) -> String {
        self.split(requests)
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                let h = self.histogram(range.clone());
                let steps = range.len() as u64;
                let accepted = self.accepted_in(range);
                let completion = accepted + steps;
                json!({
                    "text": "",
                    "meta_info": {
                        "id": format!("req-{i}"),
                        "completion_tokens": completion,
                        "spec_verify_ct": steps,
                        "spec_accept_length": completion as f64 / steps as f64,
                        "spec_accept_histogram": h,
                    },
                })
                .to_string()
                    + "\n"
            })
            .collect()
    }
}

/// The exact `E[X]` of a rank tree at the models' current context: node
/// `v` with ranks `r_1 .. r_d` is the drafter's rank-`r_j` token below the
/// tokens above it, reached with `prod_j q(t_j)` under the verifier; a rank
/// past the drafter's candidates is a node never drafted (value 0). O(|T|)
/// calls of each model.
fn rank_tree_value<D, V>(drafter: &mut D, verifier: &mut V, tree: &DraftTree) -> Result<f64>
where
    D: ContextModel + ?Sized,
    V: ContextModel + ?Sized,
{
    let mut paths: Vec<Vec<TokenId>> = Vec::with_capacity(tree.len());
    let mut reach: Vec<f64> = Vec::with_capacity(tree.len());
    for node in tree.nodes() {
        let (mut path, up) = match node.parent {
            Some(p) => (paths[p].clone(), reach[p]),
            None => (Vec::new(), 1.0),
        };
        let token = drafter
            .next(&path)?
            .tokens()
            .get(node.token as usize)
            .copied();
        let r = match token {
            Some(t) if up > 0.0 => {
                let q = verifier.next(&path)?.prob_of(t);
                path.push(t);
                up * q
            }
            _ => 0.0,
        };
        paths.push(path);
        reach.push(r);
    }
    Ok(reach.iter().sum())
}
