//! The `speclight` command-line tool. One file per subcommand; shared
//! plumbing (spec loading, output formats, atomic writes) is in `common.rs`.

mod allocate;
mod bound;
mod build;
mod check;
mod common;
mod convert;
mod demo;
mod deploy;
mod eval;
mod pair_trace;
mod plot;
mod schedule;
mod solve;
mod trace;
mod tune;
mod tune_metrics;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Optimal draft trees for speculative decoding: build, evaluate, certify.
#[derive(Debug, Parser)]
#[command(name = "speclight", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::Args),
    Bound(bound::Args),
    Check(check::Args),
    Eval(eval::Args),
    Demo(demo::Args),
    Trace(trace::Args),
    Solve(solve::Args),
    Allocate(allocate::Args),
    Convert(convert::Args),
    Tune(tune::Args),
    PairTrace(pair_trace::Args),
    Plot(plot::Args),
    Deploy(deploy::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => build::run(args),
        Command::Bound(args) => bound::run(args),
        Command::Check(args) => check::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Solve(args) => solve::run(args),
        Command::Allocate(args) => allocate::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Tune(args) => tune::run(args),
        Command::PairTrace(args) => pair_trace::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Deploy(args) => deploy::run(args),
    }
}

/// Lets a closed stdout end the process as it ends `cat` or `yes`: killed by
/// `SIGPIPE` (shell status 141), silently. Rust ignores `SIGPIPE`, which
/// turns the first write after `| head` into a panic in `println!`; the
/// default action is the one place that covers every command's output.
#[cfg(unix)]
fn die_quietly_on_closed_pipe() {
    // SAFETY: called first in `main`, before any other thread exists; it
    // only restores the default disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_quietly_on_closed_pipe() {}

fn main() -> ExitCode {
    die_quietly_on_closed_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print in full, succeed.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap's message spans several lines (usage, hints): keep the
            // substance on one line, as every other error is.
            let msg = e.to_string();
            let line: Vec<&str> = msg
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!(
                "speclight: {}",
                line.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, no backtrace.
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("speclight: error: {line}");
            ExitCode::FAILURE
        }
    }
}
