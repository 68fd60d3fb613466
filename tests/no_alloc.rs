//! The server hot paths allocate nothing in the steady state: a reused
//! builder, a reused evaluation (`Evaluator::evaluate_into`), a reused
//! batch allocation (`BatchAllocator::allocate_into`) and
//! `capacity::Controller`'s step (observe + next). A counting global
//! allocator tallies allocations on this thread.

use speclight::capacity::{
    Allocation, BatchAllocator, BatchLatencyProfile, Controller, ControllerConfig, LatencyProfile,
    ScheduleCost,
};
use speclight::{
    parse_dist, Evaluation, Evaluator, Iid, NextTokenModel, Result, TokenDist, TokenId, TreeBuilder,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

/// A context-dependent model that owns its distributions, so that any
/// allocation counted is the builder's own.
struct ByDepthParity {
    even: TokenDist,
    odd: TokenDist,
}

impl NextTokenModel for ByDepthParity {
    fn next(&mut self, path: &[TokenId]) -> Result<&TokenDist> {
        Ok(if path.len() % 2 == 0 {
            &self.even
        } else {
            &self.odd
        })
    }
}

#[test]
fn reused_builder_allocates_nothing_per_build() {
    let mut iid = Iid::new(parse_dist("zipf:1.1:32").unwrap());
    let mut lazy = ByDepthParity {
        even: parse_dist("zipf:1.3:16").unwrap(),
        odd: parse_dist("geometric:0.6:24").unwrap(),
    };
    for capacity in [64, 1024, 16384] {
        let mut builder = TreeBuilder::new(capacity)
            .unwrap()
            .with_max_depth(Some(12))
            .unwrap();
        // Warm-up builds size every buffer.
        builder.build(&mut iid).unwrap();
        builder.build(&mut lazy).unwrap();
        let n = allocations_during(|| {
            for _ in 0..3 {
                assert_eq!(builder.build(&mut iid).unwrap().len(), capacity);
                assert_eq!(builder.build(&mut lazy).unwrap().len(), capacity);
            }
        });
        assert_eq!(n, 0, "P = {capacity}: {n} allocations in steady state");
    }
    // The counter works: a fresh builder does allocate.
    assert!(
        allocations_during(|| {
            TreeBuilder::new(64).unwrap().build(&mut iid).unwrap();
        }) > 0
    );
}

#[test]
fn a_reused_batch_allocation_allocates_nothing() {
    // Context-free requests (the eager path) and path-dependent ones (lazy).
    let mut models: Vec<Box<dyn NextTokenModel>> = (0..16)
        .map(|i| -> Box<dyn NextTokenModel> {
            let dist = parse_dist(&format!("zipf:{}:24", 0.8 + 0.1 * f64::from(i))).unwrap();
            if i % 2 == 0 {
                Box::new(Iid::new(dist))
            } else {
                Box::new(ByDepthParity {
                    even: dist,
                    odd: parse_dist("geometric:0.6:24").unwrap(),
                })
            }
        })
        .collect();
    let mut allocator = BatchAllocator::new(512).unwrap();
    let mut out = Allocation::default();
    allocator.allocate_into(&mut models, &[], &mut out).unwrap();
    let n = allocations_during(|| {
        for _ in 0..3 {
            allocator.allocate_into(&mut models, &[], &mut out).unwrap();
            assert_eq!(out.used(), 512);
        }
    });
    assert_eq!(n, 0, "{n} allocations in steady state");
}

#[test]
fn a_reused_evaluator_allocates_nothing_into_a_kept_result() {
    let mut iid = Iid::new(parse_dist("zipf:1.1:32").unwrap());
    // Token ids far apart: no dense table, the binary-search look-up.
    let spread: Vec<TokenId> = (0..32).map(|i| i * 1_000_000).collect();
    let mut sparse = Iid::new(TokenDist::from_token_probs(&spread, iid.dist().probs()).unwrap());
    let mut lazy = ByDepthParity {
        even: parse_dist("zipf:1.3:16").unwrap(),
        odd: parse_dist("geometric:0.6:24").unwrap(),
    };
    let mut evaluator = Evaluator::new();
    let mut out = Evaluation::default();
    for capacity in [64, 1024, 16384] {
        let tree = TreeBuilder::new(capacity)
            .unwrap()
            .build_owned(&mut iid)
            .unwrap();
        // Warm-up evaluations size every buffer.
        evaluator.evaluate_into(&tree, &mut iid, &mut out).unwrap();
        evaluator
            .evaluate_into(&tree, &mut sparse, &mut out)
            .unwrap();
        evaluator.evaluate_into(&tree, &mut lazy, &mut out).unwrap();
        let n = allocations_during(|| {
            for _ in 0..3 {
                evaluator.evaluate_into(&tree, &mut iid, &mut out).unwrap();
                assert!(out.expected_accepted > 0.0);
                evaluator
                    .evaluate_into(&tree, &mut sparse, &mut out)
                    .unwrap();
                evaluator.evaluate_into(&tree, &mut lazy, &mut out).unwrap();
            }
        });
        assert_eq!(n, 0, "P = {capacity}: {n} allocations in steady state");
        // `evaluate` returns a new result: its one allocation.
        let n = allocations_during(|| {
            evaluator.evaluate(&tree, &mut iid).unwrap();
        });
        assert_eq!(n, 1, "P = {capacity}: {n} allocations for one evaluate");
    }
}

#[test]
fn a_controller_step_allocates_nothing() {
    let t_v =
        BatchLatencyProfile::new(&[(1, 0, 0.02), (1, 16, 0.022), (64, 0, 0.03), (64, 16, 0.3)])
            .unwrap();
    let cost = ScheduleCost::new(t_v, LatencyProfile::constant(0.001).unwrap(), 0.0).unwrap();
    let mut c = Controller::new(cost, 16, ControllerConfig::default()).unwrap();
    let accepted: Vec<u32> = (0..64).map(|i| (i * 7 % 5) as u32).collect();
    let mut lengths = 0usize;
    let allocs = allocations_during(|| {
        for step in 0..2000u64 {
            let b = 1 + step % 64;
            let d = c.next(b);
            lengths += d.capacity;
            let obs: &[u32] = &accepted[..b as usize];
            // Clamp to what was drafted, as a server would observe.
            let used = if obs.iter().all(|&x| x as usize <= d.capacity) {
                d.capacity
            } else {
                d.capacity.max(4)
            };
            c.observe(used, obs).unwrap();
        }
    });
    assert_eq!(allocs, 0);
    // The loop did real work: the controller speculated at some point.
    assert!(lengths > 0);
}
