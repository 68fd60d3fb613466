//! A steady-state server step allocates nothing: once the buffers have
//! grown, rebuilding a tree, refilling the verifier inputs and walking them
//! make no heap allocation. Counted by a global allocator wrapper, on this
//! test's thread only.

use speclight::serve::{Accepted, VerifierInputs};
use speclight::{Iid, TokenDist, TreeBuilder};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_step_allocates_nothing() {
    let mut drafters = [
        Iid::new(TokenDist::from_token_probs(&[3, 9, 4], &[0.5, 0.3, 0.2]).unwrap()),
        Iid::new(TokenDist::from_token_probs(&[3, 9, 4], &[0.7, 0.2, 0.1]).unwrap()),
    ];
    let mut builder = TreeBuilder::new(256).unwrap();
    let mut inputs = VerifierInputs::new();
    let mut accepted = Accepted::new();
    let chosen = vec![3u32; 257];
    let mut bias = vec![0f32; 257 * 257];
    let mut step = |drafter: &mut Iid, l: usize| {
        let tree = builder.build(drafter).unwrap();
        inputs.fill(tree, l, 7).unwrap();
        inputs.write_mask_bias_into(&mut bias).unwrap();
        inputs.walk_chosen(&chosen, &mut accepted).unwrap();
        accepted.len()
    };
    // Warm-up: both trees once, so every buffer reaches its size.
    for d in drafters.iter_mut() {
        step(d, 100);
    }
    COUNTING.with(|c| c.set(true));
    let mut accepted_total = 0;
    for round in 0..4 {
        for d in drafters.iter_mut() {
            accepted_total += step(d, 100 + round);
        }
    }
    COUNTING.with(|c| c.set(false));
    assert!(accepted_total > 0);
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0);
}
