//! The certificate chain of `docs/THEORY.md` section 4c for one tree:
//! [`Certificate`], [`check`] and the text form of a certificate.

use super::closed_form::{
    paper_bound, renewal_bound, renewal_bound_optimized, trivial_cap, BoundValue, Moments,
};
use super::dual::{check_inputs, dual_bound_ln, optimal_value, DualOptions};
use crate::build::TreeBuilder;
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::model::NextTokenModel;
use crate::tree::DraftTree;

/// Relative tolerance of every link of the certificate chain: `a <= b` holds
/// when `a <= b + CHAIN_TOLERANCE * max(1, |b|)`, an equality when both
/// directions do. Rounding in sums of up to millions of path probabilities
/// stays far below it.
pub const CHAIN_TOLERANCE: f64 = 1e-9;

/// One link of the chain of docs/THEORY.md section 4c.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChainLink {
    /// The link, e.g. `"E[X](T) <= OPT(P)"`.
    pub link: String,
    /// Left-hand number.
    pub left: f64,
    /// Right-hand number.
    pub right: f64,
    /// Whether it holds within [`Certificate::tolerance`].
    pub holds: bool,
}

/// Every number of docs/THEORY.md section 4 for one tree, plus the verdict.
///
/// Built by [`Certificate::compute`] (or [`check`], which also fails on a
/// violated link) from the tree and the verifier alone.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Certificate {
    /// Capacity `P`.
    pub capacity: usize,
    /// Depth limit `D`, if any.
    pub max_depth: Option<u32>,
    /// Entropy `mu` (only for a context-free verifier with a complete
    /// distribution; the closed forms need it).
    pub entropy: Option<f64>,
    /// Second log-moment `mu2` (as `entropy`).
    pub second_log_moment: Option<f64>,
    /// Number of nodes of the tree checked.
    pub tree_nodes: usize,
    /// Depth of the tree checked.
    pub tree_depth: u32,
    /// `E[X]` of the tree, by the DP evaluator.
    pub tree_expected_accepted: f64,
    /// `OPT(P)`, the sum of the `P` largest `pi`, by the best-first
    /// builder (not the enumeration that gives `U(lambda*)`).
    pub optimal_expected_accepted: f64,
    /// `lambda*`.
    pub lambda: f64,
    /// `U(lambda*)`.
    pub dual_certificate: f64,
    /// (B2), or (B1) where `P mu <= 1`; `None` without moments.
    pub renewal_bound_optimized: Option<BoundValue>,
    /// (B1); `None` without moments.
    pub renewal_bound: Option<BoundValue>,
    /// The published bound with explicit constant; `None` without moments.
    pub paper_bound: Option<BoundValue>,
    /// Relative tolerance of every link.
    pub tolerance: f64,
    /// The links checked, in chain order.
    pub links: Vec<ChainLink>,
    /// `true` when every link holds.
    pub certified: bool,
}

/// `OPT(P)` as the best-first builder finds it: the sum of `pi` over the
/// nodes its heap selects (fewer than `P` when the model runs out), summed
/// smallest first for accuracy. O(P log P).
fn best_first_optimum<M: NextTokenModel + ?Sized>(
    verifier: &mut M,
    capacity: usize,
    max_depth: Option<u32>,
) -> Result<f64> {
    let mut builder = TreeBuilder::new(capacity)?.with_max_depth(max_depth)?;
    let mut pis: Vec<f64> = builder
        .build(verifier)?
        .path_logprobs()
        .iter()
        .map(|lp| lp.exp())
        .collect();
    pis.sort_unstable_by(f64::total_cmp);
    Ok(pis.iter().sum())
}

/// Options of [`check_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckOptions {
    /// Enumeration options (the depth limit `D` and the node limit).
    pub dual: DualOptions,
    /// Relative tolerance of each link; default [`CHAIN_TOLERANCE`].
    pub tolerance: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            dual: DualOptions::default(),
            tolerance: CHAIN_TOLERANCE,
        }
    }
}

fn link(name: &str, left: f64, right: f64, equal: bool, tol: f64) -> ChainLink {
    let le = |a: f64, b: f64| a <= b + tol * b.abs().max(1.0);
    let holds = le(left, right) && (!equal || le(right, left));
    ChainLink {
        link: name.to_string(),
        left,
        right,
        holds,
    }
}

impl Certificate {
    /// Computes every number of the chain for `tree` under `verifier`, the
    /// two sides of every link by different code: `E[X](T)` by the DP
    /// evaluator, `OPT(P)` by the best-first builder's heap, `lambda*` by
    /// [`optimal_value`] and `U(lambda*)` by a separate
    /// [`super::dual_bound`] (both the depth-first enumeration), and the
    /// closed forms when the verifier is context-free with a complete
    /// distribution (they hold for i.i.d. verifiers only). Violated links are
    /// recorded, not returned as errors; see [`check`].
    ///
    /// # Errors
    ///
    /// As [`super::dual_bound`], and [`Error::InvalidTree`] for a malformed tree.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{bound::{Certificate, CheckOptions}, Iid, TokenDist, TreeBuilder};
    /// let mut p = Iid::new(TokenDist::from_probs(&[0.7, 0.3])?);
    /// let tree = TreeBuilder::new(8)?.build_owned(&mut p)?;
    /// let cert = Certificate::compute(&tree, &mut p, 8, &CheckOptions::default())?;
    /// assert!(cert.certified);
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn compute<M: NextTokenModel + ?Sized>(
        tree: &DraftTree,
        verifier: &mut M,
        capacity: usize,
        opts: &CheckOptions,
    ) -> Result<Self> {
        check_inputs(capacity, &opts.dual)?;
        tree.validate()?;
        // Each side of every link from different code: E[X](T) by the DP
        // evaluator, OPT(P) by the builder's heap, lambda* and U(lambda*) by
        // the depth-first enumeration, the closed forms by their formulas.
        let tree_value = evaluate(tree, verifier)?.expected_accepted;
        let opt = best_first_optimum(verifier, capacity, opts.dual.max_depth)?;
        let lambda_star = optimal_value(verifier, capacity, &opts.dual)?;
        let dual = dual_bound_ln(verifier, lambda_star.ln_lambda_star, capacity, &opts.dual)?;
        let moments = if verifier.is_context_free() {
            Moments::of_dist(verifier.next(&[])?).ok()
        } else {
            None
        };
        let d = opts.dual.max_depth;
        let bounds = moments.map(|m| {
            let (mu, mu2) = (m.entropy, m.second_log_moment);
            (
                renewal_bound_optimized(mu, mu2, capacity, d),
                renewal_bound(mu, mu2, capacity, d),
                paper_bound(mu, mu2, capacity, d),
            )
        });
        let mut cert = Self {
            capacity,
            max_depth: d,
            entropy: moments.map(|m| m.entropy),
            second_log_moment: moments.map(|m| m.second_log_moment),
            tree_nodes: tree.len(),
            tree_depth: tree.max_depth(),
            tree_expected_accepted: tree_value,
            optimal_expected_accepted: opt,
            lambda: lambda_star.lambda_star,
            dual_certificate: dual.value,
            renewal_bound_optimized: bounds.map(|b| b.0),
            renewal_bound: bounds.map(|b| b.1),
            paper_bound: bounds.map(|b| b.2),
            tolerance: opts.tolerance,
            links: Vec::new(),
            certified: false,
        };
        cert.links = cert.chain();
        cert.certified = cert.links.iter().all(|l| l.holds);
        Ok(cert)
    }

    /// The links of the chain, evaluated from the stored numbers.
    fn chain(&self) -> Vec<ChainLink> {
        let tol = self.tolerance;
        let mut links = vec![link(
            "|T| <= P",
            self.tree_nodes as f64,
            self.capacity as f64,
            false,
            0.0,
        )];
        if let Some(d) = self.max_depth {
            links.push(link(
                "depth(T) <= D",
                f64::from(self.tree_depth),
                f64::from(d),
                false,
                0.0,
            ));
        }
        links.push(link(
            "E[X](T) <= OPT(P)",
            self.tree_expected_accepted,
            self.optimal_expected_accepted,
            false,
            tol,
        ));
        links.push(link(
            "OPT(P) = U(lambda*)",
            self.optimal_expected_accepted,
            self.dual_certificate,
            true,
            tol,
        ));
        match (
            self.renewal_bound_optimized,
            self.renewal_bound,
            self.paper_bound,
        ) {
            (Some(b2), Some(b1), Some(paper)) => {
                links.push(link(
                    "U(lambda*) <= B2",
                    self.dual_certificate,
                    b2.value(),
                    false,
                    tol,
                ));
                links.push(link("B2 <= B1", b2.value(), b1.value(), false, tol));
                links.push(link(
                    "B1 <= paper_bound",
                    b1.value(),
                    paper.value(),
                    false,
                    tol,
                ));
            }
            _ => links.push(link(
                "U(lambda*) <= min(P, D)",
                self.dual_certificate,
                trivial_cap(self.capacity, self.max_depth),
                false,
                tol,
            )),
        }
        links
    }

    /// Re-evaluates every link from the stored numbers (ignoring the stored
    /// `links` and `certified`, so a certificate read back from JSON is
    /// checked, not trusted) and returns the first violated one.
    ///
    /// # Errors
    ///
    /// [`Error::ChainViolated`] naming the link and its two numbers.
    ///
    /// # Examples
    ///
    /// ```
    /// use speclight::{bound::check, Error, Iid, TokenDist, TreeBuilder};
    /// let mut p = Iid::new(TokenDist::from_probs(&[0.6, 0.4])?);
    /// let tree = TreeBuilder::new(4)?.build_owned(&mut p)?;
    /// let mut cert = check(&tree, &mut p, 4)?;
    /// cert.dual_certificate += 0.5; // tamper with one number
    /// assert!(matches!(cert.verdict(), Err(Error::ChainViolated { .. })));
    /// # Ok::<(), speclight::Error>(())
    /// ```
    pub fn verdict(&self) -> Result<()> {
        match self.chain().into_iter().find(|l| !l.holds) {
            Some(l) => Err(Error::ChainViolated {
                link: l.link,
                left: l.left,
                right: l.right,
            }),
            None => Ok(()),
        }
    }
}

/// The certificate as text: every number, every link, the verdict (the
/// text of `speclight bound --dist` and `speclight check`).
impl std::fmt::Display for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let depth = self.max_depth.map_or("none".into(), |d| d.to_string());
        writeln!(f, "capacity P = {}, depth limit D = {depth}", self.capacity)?;
        match (self.entropy, self.second_log_moment) {
            (Some(mu), Some(mu2)) => {
                writeln!(
                    f,
                    "verifier entropy mu = {mu:.6} nats, second log-moment mu2 = {mu2:.6}"
                )?;
            }
            _ => {
                writeln!(
                    f,
                    "closed forms not applicable (they need a complete i.i.d. verifier distribution)"
                )?;
            }
        }
        writeln!(
            f,
            "tree: {} nodes, E[X](T) = {:.6}",
            self.tree_nodes, self.tree_expected_accepted
        )?;
        writeln!(f, "OPT(P)          = {:.6}", self.optimal_expected_accepted)?;
        writeln!(
            f,
            "U(lambda*)      = {:.6}  (lambda* = {:.6e})",
            self.dual_certificate, self.lambda
        )?;
        let rows = [
            ("B2 (renewal)   ", self.renewal_bound_optimized),
            ("B1 (renewal)   ", self.renewal_bound),
            ("paper bound    ", self.paper_bound),
        ];
        for (name, b) in rows {
            if let Some(b) = b {
                match b.closed_form() {
                    Some(c) if c > b.cap() => {
                        writeln!(f, "{name} = {:.6}  (closed form {c:.6}, capped)", b.value())?;
                    }
                    Some(_) => {
                        writeln!(f, "{name} = {:.6}", b.value())?;
                    }
                    None => {
                        writeln!(
                            f,
                            "{name} = {:.6}  (entropy 0: no finite closed form, trivial cap min(P, D))",
                            b.value()
                        )?;
                    }
                }
            }
        }
        writeln!(f, "chain (relative tolerance {:e}):", self.tolerance)?;
        for l in &self.links {
            writeln!(
                f,
                "  [{}] {}: {:.9} vs {:.9}",
                if l.holds { "ok" } else { "FAIL" },
                l.link,
                l.left,
                l.right
            )?;
        }
        writeln!(
            f,
            "certified: {}",
            if self.certified { "yes" } else { "no" }
        )?;
        Ok(())
    }
}

/// Checks `tree` against the whole chain of docs/THEORY.md section 4c under
/// `verifier` with capacity `P` and no depth limit; see [`check_with`].
///
/// # Errors
///
/// As [`check_with`].
///
/// # Examples
///
/// ```
/// use speclight::{bound::check, Iid, TokenDist, TreeBuilder};
/// let mut p = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2])?);
/// let tree = TreeBuilder::new(32)?.build_owned(&mut p)?;
/// let cert = check(&tree, &mut p, 32)?;
/// assert!((cert.tree_expected_accepted - cert.optimal_expected_accepted).abs() < 1e-9);
/// // The same tree does not fit a capacity of 16.
/// assert!(check(&tree, &mut p, 16).is_err());
/// # Ok::<(), speclight::Error>(())
/// ```
pub fn check<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
    capacity: usize,
) -> Result<Certificate> {
    check_with(tree, verifier, capacity, &CheckOptions::default())
}

impl Certificate {
    /// What `speclight bound --json` prints (and Python's
    /// `speclight.certificate` returns): the certificate's fields with the
    /// verifier's entropy `mu` and second log-moment `mu2`, and a note when
    /// `mu = 0` leaves no closed form.
    #[cfg(feature = "serde")]
    pub fn report_json(&self, moments: &Moments) -> serde_json::Value {
        let value = |b: Option<BoundValue>| b.map(|b| b.value());
        let closed_form = self
            .renewal_bound
            .is_some_and(|b| b.closed_form().is_some());
        let mut doc = serde_json::json!({
            "capacity": self.capacity,
            "max_depth": self.max_depth,
            "entropy": moments.entropy,
            "second_log_moment": moments.second_log_moment,
            "optimal_expected_accepted": self.optimal_expected_accepted,
            "lambda": self.lambda,
            "dual_certificate": self.dual_certificate,
            "renewal_bound_optimized": value(self.renewal_bound_optimized),
            "renewal_bound": value(self.renewal_bound),
            "paper_bound": value(self.paper_bound),
            "certified": self.certified,
            "closed_form": closed_form,
            "links": self.links,
        });
        if !closed_form {
            doc["note"] = serde_json::json!(
                "entropy is 0: no finite closed form; the bounds shown are the trivial cap min(P, D)"
            );
        }
        doc
    }
}

/// [`Certificate::compute`], then fail on the first violated link.
///
/// Cost: one evaluation of the tree, the enumerations of [`optimal_value`]
/// (at most about 70 of up to `2P + 1` nodes each) and one of [`super::dual_bound`]
/// at `lambda*` (fewer than `P` nodes). Needs `node_limit >= 2P + 1`.
///
/// # Errors
///
/// [`Error::ChainViolated`] naming the first link that fails and its two
/// numbers, and the errors of [`Certificate::compute`].
pub fn check_with<M: NextTokenModel + ?Sized>(
    tree: &DraftTree,
    verifier: &mut M,
    capacity: usize,
    opts: &CheckOptions,
) -> Result<Certificate> {
    let cert = Certificate::compute(tree, verifier, capacity, opts)?;
    cert.verdict()?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Iid, TokenDist, TokenId, TreeBuilder};

    /// A verifier that answers `a` for its first `honest` calls and `b`
    /// after: a stand-in for a bug that makes two computations see
    /// different models.
    struct Fickle {
        calls: usize,
        honest: usize,
        a: TokenDist,
        b: TokenDist,
    }

    impl NextTokenModel for Fickle {
        fn next(&mut self, _path: &[TokenId]) -> Result<&TokenDist> {
            self.calls += 1;
            Ok(if self.calls <= self.honest {
                &self.a
            } else {
                &self.b
            })
        }
    }

    /// Issue 12, item 18: the two sides of `OPT(P) = U(lambda*)` come from
    /// different code (the builder's heap, the enumeration), so a model
    /// that changes between them breaks the link. When both came from one
    /// enumeration, as before, the link held whatever the model did
    /// (checked by taking OPT from the enumeration: this test then fails).
    #[test]
    fn opt_and_the_dual_come_from_different_computations() {
        let a = TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap();
        let b = TokenDist::from_probs(&[0.9, 0.05, 0.05]).unwrap();
        let capacity = 12;
        let mut drafter = Iid::new(a.clone());
        let tree = TreeBuilder::new(capacity)
            .unwrap()
            .build_owned(&mut drafter)
            .unwrap();
        // Count the calls the evaluator and the builder make on an honest model.
        let mut counter = Fickle {
            calls: 0,
            honest: usize::MAX,
            a: a.clone(),
            b: b.clone(),
        };
        evaluate(&tree, &mut counter).unwrap();
        best_first_optimum(&mut counter, capacity, None).unwrap();
        let mut fickle = Fickle {
            calls: 0,
            honest: counter.calls,
            a,
            b,
        };
        let cert =
            Certificate::compute(&tree, &mut fickle, capacity, &CheckOptions::default()).unwrap();
        let link = cert
            .links
            .iter()
            .find(|l| l.link == "OPT(P) = U(lambda*)")
            .unwrap();
        assert!(!link.holds, "{link:?}");
        assert!(!cert.certified);
        // The same tree under an honest verifier is certified.
        let mut honest = Iid::new(TokenDist::from_probs(&[0.5, 0.3, 0.2]).unwrap());
        assert!(
            Certificate::compute(&tree, &mut honest, capacity, &CheckOptions::default())
                .unwrap()
                .certified
        );
    }

    #[test]
    fn point_mass_ties_end_at_lambda_one() {
        let mut m = Iid::new(TokenDist::from_probs(&[1.0]).unwrap());
        let opt = optimal_value(&mut m, 50, &DualOptions::default()).unwrap();
        assert_eq!(opt.lambda_star, 1.0);
        assert_eq!(opt.value, 50.0);
        let tree = TreeBuilder::new(50).unwrap().build_owned(&mut m).unwrap();
        let cert = check(&tree, &mut m, 50).unwrap();
        assert_eq!(cert.renewal_bound.unwrap().closed_form(), None);
        assert_eq!(cert.renewal_bound.unwrap().value(), 50.0);
    }

    #[test]
    fn violated_link_names_itself() {
        // A tree evaluated under one verifier cannot beat OPT there; forge
        // a certificate whose numbers break the chain and read the error.
        let mut m = Iid::new(TokenDist::from_probs(&[0.6, 0.4]).unwrap());
        let tree = TreeBuilder::new(4).unwrap().build_owned(&mut m).unwrap();
        let mut cert = check(&tree, &mut m, 4).unwrap();
        cert.tree_expected_accepted = cert.optimal_expected_accepted + 0.5;
        match cert.verdict() {
            Err(Error::ChainViolated { link, left, right }) => {
                assert_eq!(link, "E[X](T) <= OPT(P)");
                assert_eq!(left, cert.tree_expected_accepted);
                assert_eq!(right, cert.optimal_expected_accepted);
            }
            other => panic!("expected a violated link, got {other:?}"),
        }
    }
}
