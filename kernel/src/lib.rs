//! engagement_kernel: the compiled per-event kernel of engagement-stream.
//!
//! Each function here has a pure-Python reference that it must match exactly (the
//! differential tests in `tests/unit/test_kernel_differential.py` hold them equal). Whatever
//! a function does not handle itself (a legacy layout, a value out of the fixed-size range,
//! a string that needs escaping, malformed input) it hands to that reference unchanged, so
//! errors and rare shapes behave exactly as in Python.

use pyo3::prelude::*;

mod codec;
mod decode;
mod format;
mod window;

/// The Python module `engagement_kernel`.
#[pymodule]
fn engagement_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LAYOUT", 1)?;
    m.add_function(wrap_pyfunction!(codec::state_values, m)?)?;
    m.add_function(wrap_pyfunction!(codec::state_from_fields, m)?)?;
    m.add_function(wrap_pyfunction!(codec::encodes, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decodes, m)?)?;
    m.add_function(wrap_pyfunction!(codec::history_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(codec::history_from_bytes, m)?)?;
    m.add_class::<decode::FastDecoder>()?;
    m.add_function(wrap_pyfunction!(decode::not_native, m)?)?;
    m.add_function(wrap_pyfunction!(window::running_build, m)?)?;
    m.add_function(wrap_pyfunction!(format::format_g, m)?)?;
    m.add_function(wrap_pyfunction!(format::iso_ms, m)?)?;
    Ok(())
}
