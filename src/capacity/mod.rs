//! Verifier capacity (docs/THEORY.md section 5) and batch allocation (section 3).
//!
//! - [`LatencyProfile`], [`DraftCost`] and [`CostModel`]: what one
//!   speculative iteration costs on given hardware.
//! - [`CapacitySolver`]: tokens per second and speedup for every capacity
//!   `n` and depth limit `D`, the argmax, and the speed of light
//!   ([`speed_of_light`]), with one best-first run per depth limit.
//! - [`BatchLatencyProfile`], [`ScheduleCost`] and [`Scheduler`]: the
//!   best capacity and depth (and chain length) per batch size, for
//!   servers that switch settings with the load.
//! - [`Controller`]: the chain length for the next step from per-step
//!   acceptance observations, with hysteresis, allocation-free.
//! - [`BatchAllocator`]: `B` requests sharing one verifier pass of `N` draft
//!   tokens, optimally, by one best-first over a merged heap.
//!
//! ```
//! use speclight::capacity::{CapacitySolver, CostModel, DraftCost, LatencyProfile};
//! use speclight::Positional;
//! let t_v = LatencyProfile::new(&[(0, 0.025), (16, 0.025), (256, 0.09)])?;
//! let cost = CostModel::new(t_v, DraftCost::PerStep(0.002), 0.0)?;
//! let mut model = Positional::new(&[0.634, 0.108, 0.057])?;
//! let s = CapacitySolver::new(cost, 64, 8)?.solve(&mut model)?;
//! assert!(s.best.speedup <= s.speed_of_light.speedup);
//! # Ok::<(), speclight::Error>(())
//! ```

mod allocate;
mod batch_latency;
mod controller;
mod depth_curves;
mod latency;
mod schedule;
mod solver;

pub use allocate::{allocate, Allocation, BatchAllocator, RequestAllocation, RequestLimits};
pub use batch_latency::{BatchLatencyProfile, MAX_PROFILE_BATCH_SIZES};
pub use controller::{Controller, ControllerConfig, Decision, MAX_CONTROLLER_DEPTH};
pub use latency::{CostModel, DraftCost, LatencyProfile, MIN_VERIFIER_SECONDS};
pub use schedule::{
    BatchTier, Schedule, ScheduleCost, ScheduleEntry, Scheduler, MAX_SCHEDULE_BATCH_SIZE,
    MAX_SCHEDULE_BATCH_SIZES, MAX_SCHEDULE_WORK,
};
pub use solver::{
    speed_of_light, CapacityPoint, CapacitySolver, Solution, SpeedOfLight, MAX_TABLE_ROWS,
};
