//! `E[X](n, D)` for every capacity `n <= N` and depth limit `D <= D_max`
//! (docs/THEORY.md section 5): one best-first run per depth limit, valued
//! under the drafter itself (the builder's `OPT` curve) or under a separate
//! verifier (one evaluation, then prefix sums). The capacity solver and the
//! batch scheduler both score these curves.

use crate::build::TreeBuilder;
use crate::error::Result;
use crate::eval::Evaluator;
use crate::model::NextTokenModel;

/// Calls `visit(d, depths, curve)` for every depth limit `d` in
/// `1..=max_depth`: `depths` are the node depths of the `max_capacity`-node
/// tree in commit order and `curve[n - 1] = E[X](n, d)`, under `verifier`
/// when given, else under `drafter`. Time O(D_max (N log N + N)) plus the
/// model calls; the buffers are reused across depth limits.
///
/// # Errors
///
/// The builder's errors for the settings, and whatever the models return.
pub(super) fn for_each_depth_limit<D, V>(
    max_capacity: usize,
    max_depth: u32,
    drafter: &mut D,
    mut verifier: Option<&mut V>,
    mut visit: impl FnMut(u32, &[u32], &[f64]),
) -> Result<()>
where
    D: NextTokenModel + ?Sized,
    V: NextTokenModel + ?Sized,
{
    let mut builder = TreeBuilder::new(max_capacity)?;
    let mut evaluator = Evaluator::new();
    let mut curve = Vec::with_capacity(max_capacity);
    for d in 1..=max_depth {
        builder.set_max_depth(Some(d))?;
        builder.build(drafter)?;
        match verifier.as_deref_mut() {
            None => visit(d, builder.tree().depths(), builder.opt_curve()),
            Some(v) => {
                evaluator.evaluate(builder.tree(), v)?;
                evaluator.prefix_expected(&mut curve);
                visit(d, builder.tree().depths(), &curve);
            }
        }
    }
    Ok(())
}
