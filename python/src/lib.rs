//! Python bindings of speclight (PyO3, `abi3` for CPython >= 3.9), imported
//! as `speclight._native` and re-exported by the pure-Python package
//! `speclight`. One file per concept: `tree` (the tree type and its
//! formats), `build` (builders, batch), `inputs` (verifier buffers and the
//! verification walk), `evaluate` (E[X] and bounds), `arrays` (numpy
//! conversions and caller-owned buffers), `errors` (Rust errors as
//! `ValueError`), `sglang` (SGLang's EAGLE tree selection, `speclight.sglang`).
//!
//! Every function validates its input in Rust and raises `ValueError` with
//! the library's message; no input can crash the interpreter. The one
//! `unsafe` block writes a torch tensor through its checked `data_ptr()`
//! (`arrays::write_at`); everything else is safe code.
#![deny(unsafe_code)]

mod arrays;
mod build;
mod errors;
mod evaluate;
mod functions;
mod inputs;
mod sglang;
mod sources;
mod tree;

use pyo3::prelude::*;

/// The native module: `speclight._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<tree::PyTree>()?;
    m.add_class::<build::PyBuilder>()?;
    m.add_class::<inputs::PyVerifierInputs>()?;
    m.add_function(wrap_pyfunction!(build::build, m)?)?;
    m.add_function(wrap_pyfunction!(build::build_batch, m)?)?;
    m.add_function(wrap_pyfunction!(inputs::verifier_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(inputs::walk_chosen, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::bounds, m)?)?;
    // SGLang drop-in (speclight.sglang).
    m.add_function(wrap_pyfunction!(sglang::sglang_organize, m)?)?;
    m.add_function(wrap_pyfunction!(sglang::sglang_build_tree, m)?)?;
    m.add_function(wrap_pyfunction!(sglang::sglang_allocate, m)?)?;
    m.add_function(wrap_pyfunction!(sglang::sglang_expected_accepted, m)?)?;
    m.add("MAX_CAPACITY", speclight::MAX_CAPACITY)?;
    // The CLI's --json reports as dicts.
    m.add_function(wrap_pyfunction!(functions::solve, m)?)?;
    m.add_function(wrap_pyfunction!(functions::tune, m)?)?;
    m.add_function(wrap_pyfunction!(functions::deploy, m)?)?;
    m.add_function(wrap_pyfunction!(functions::certificate, m)?)?;
    Ok(())
}
