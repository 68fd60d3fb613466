//! The command-line tool, run as a user runs it: one test binary (one build,
//! one link) with a module per area and one way to run the binary
//! ([`harness::speclight`]). The library's own tests live in `tests/*.rs`.
#![cfg(feature = "cli")]

mod harness;

mod bad_input;
mod bound;
mod build_eval;
mod capacity;
mod convert;
mod demo;
mod deploy;
mod metrics;
#[cfg(unix)] // FIFOs, devices, symlinks and SIGPIPE
mod output_files;
mod schedule;
mod trace;
mod tune;
