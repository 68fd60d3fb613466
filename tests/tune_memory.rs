//! Tuning streams its input: the peak heap in use while tuning a trace does
//! not grow with the number of records. A global allocator tracks the bytes
//! live on this thread and their peak.
#![cfg(feature = "serde")]

use speclight::tune::{tune, Split, SyntheticTrace, TuneConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Peak heap bytes above the starting level while `f` runs.
fn peak_during(f: impl FnOnce()) -> isize {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    f();
    PEAK.with(Cell::get) - start
}

#[test]
fn peak_memory_does_not_grow_with_the_trace() {
    // Two rows: the synthetic trace then carries no target_logprob, so the
    // speed-of-light token buffer (the one part that grows with the trace,
    // capped at MAX_SPEED_OF_LIGHT_TOKENS) stays empty. Seeds 1 and 2.
    let synth = SyntheticTrace::new(vec![vec![0.6, 0.2], vec![0.7, 0.1]], 8, 4).unwrap();
    let config = TuneConfig {
        capacities: vec![4, 16, 64],
        split: Split::new(0.3, 0).unwrap(),
        ..Default::default()
    };
    let mut peaks = Vec::new();
    for (seqs, seed) in [(20u64, 1u64), (400, 2)] {
        let mut trace = Vec::new();
        synth.write_jsonl(&mut trace, seqs, 50, seed).unwrap();
        let peak = peak_during(|| {
            tune(|| Ok(&trace[..]), &config).unwrap();
        });
        println!(
            "{} records ({} bytes): peak {peak} bytes",
            seqs * 50 * 4,
            trace.len()
        );
        peaks.push((trace.len(), peak));
    }
    let (small, large) = (peaks[0], peaks[1]);
    assert!(
        large.0 >= 19 * small.0,
        "the second trace is 20 times the first"
    );
    // The large trace is ~20x the small one; the peak may differ only by
    // noise (counts of new ranks, allocator rounding), far below the input.
    assert!(
        large.1 < small.1 + 64 * 1024,
        "peaks {small:?} vs {large:?}"
    );
    assert!(
        large.1 < (large.0 / 20) as isize,
        "peak {} for {} input bytes",
        large.1,
        large.0
    );
}
