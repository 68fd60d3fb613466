//! One controller step (observe a batch's accepted lengths, choose the next
//! length) at batch size 64 and a longest chain of 16: the per-step cost a
//! server pays (`capacity::Controller`).
//!
//! `cargo bench --bench controller -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use speclight::capacity::{
    BatchLatencyProfile, Controller, ControllerConfig, LatencyProfile, ScheduleCost,
};
use std::hint::black_box;

fn step(c: &mut Criterion) {
    let t_v =
        BatchLatencyProfile::new(&[(1, 0, 0.012), (1, 16, 0.013), (64, 0, 0.02), (64, 16, 0.1)])
            .expect("profile");
    let cost =
        ScheduleCost::new(t_v, LatencyProfile::constant(0.0015).expect("t_d"), 0.0).expect("cost");
    let mut controller =
        Controller::new(cost, 16, ControllerConfig::default()).expect("controller");
    let accepted: Vec<u32> = (0..64).map(|i| (i * 7 % 9) as u32).collect();
    c.bench_function("controller step b=64 K=16", |bench| {
        bench.iter(|| {
            controller
                .observe(16, black_box(&accepted))
                .expect("observe");
            black_box(controller.next(black_box(64)))
        })
    });
}

criterion_group!(benches, step);
criterion_main!(benches);
