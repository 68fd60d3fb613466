//! Rust errors become Python `ValueError`s carrying the library's message.

use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

/// Converts a library result into a Python one.
pub trait OrValueError<T> {
    /// `Err(e)` becomes `ValueError(str(e))`.
    fn or_value_error(self) -> Result<T, PyErr>;
}

impl<T> OrValueError<T> for speclight::Result<T> {
    fn or_value_error(self) -> Result<T, PyErr> {
        self.map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// A `ValueError` with a message of the bindings' own.
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
