//! `stream.core.window.Running.build`: a window's running totals from its buckets.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyList, PyString};

static RUNNING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const ACTIVE: &str = "_active";
const SESSION: &str = "_session";

struct Defer;

impl From<PyErr> for Defer {
    fn from(_: PyErr) -> Self {
        Defer
    }
}

/// `Running.build(model, buckets, prior)` with `gap = returning_gap(model)` given: the same
/// Running (sums in the same order); anything unusual goes to `Running.build` itself.
#[pyfunction]
pub fn running_build<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    buckets: &Bound<'py, PyAny>,
    prior: &Bound<'py, PyAny>,
    gap: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let running = RUNNING.get_or_try_init(py, || {
        py.import("stream.core.window")?.getattr("Running").map(Bound::unbind)
    })?;
    let running = running.bind(py);
    match build(py, running, buckets, prior, gap) {
        Ok(built) => Ok(built),
        Err(Defer) => running.call_method1(intern!(py, "build"), (model, buckets, prior)),
    }
}

fn small_int(value: &Bound<'_, PyAny>) -> Result<i64, Defer> {
    if !value.is_exact_instance_of::<PyInt>() {
        return Err(Defer);
    }
    let value: i64 = value.extract()?;
    if value.unsigned_abs() >= 1 << 62 {
        return Err(Defer); // sums and differences stay in range
    }
    Ok(value)
}

fn build<'py>(
    py: Python<'py>,
    running: &Bound<'py, PyAny>,
    buckets: &Bound<'py, PyAny>,
    prior: &Bound<'py, PyAny>,
    gap: Option<i64>,
) -> Result<Bound<'py, PyAny>, Defer> {
    let buckets = buckets.cast::<PyDict>().map_err(|_| Defer)?;
    let prior_value = if prior.is_none() { None } else { Some(small_int(prior)?) };
    let sums = PyDict::new(py);
    // (bucket, active, session) per bucket, in the buckets' order
    let mut marks: Vec<(i64, bool, bool)> = Vec::with_capacity(buckets.len());
    let mut totals: Vec<i64> = Vec::new();
    let mut names: Vec<(String, Bound<'py, PyString>)> = Vec::new();
    for (bucket, slot) in buckets.iter() {
        let bucket = small_int(&bucket)?;
        let slot = slot.cast::<PyDict>().map_err(|_| Defer)?;
        let (mut active, mut session) = (false, false);
        for (key, value) in slot.iter() {
            let key = key.cast_into::<PyString>().map_err(|_| Defer)?;
            if !key.is_exact_instance_of::<PyString>() {
                return Err(Defer);
            }
            let value = small_int(&value)?;
            let text = key.to_str()?;
            if text.starts_with('_') {
                // a counter: not summed (`is_counter`); `get(ACTIVE, 0) > 0`
                if text == ACTIVE {
                    active = value > 0;
                } else if text == SESSION {
                    session = value > 0;
                }
                continue;
            }
            match names.iter().position(|(n, _)| n == text) {
                Some(index) => {
                    totals[index] = totals[index].checked_add(value).ok_or(Defer)?;
                }
                None => {
                    names.push((text.to_owned(), key.clone()));
                    totals.push(value);
                }
            }
        }
        marks.push((bucket, active, session));
    }
    for ((_, name), total) in names.iter().zip(&totals) {
        sums.set_item(name, *total)?;
    }
    let mut keys: Vec<i64> = marks.iter().map(|m| m.0).collect();
    keys.sort_unstable();
    let mut active: Vec<(i64, bool)> = marks.iter().filter(|m| m.1).map(|m| (m.0, m.2)).collect();
    active.sort_unstable_by_key(|m| m.0);
    let mut returns: i64 = 0;
    if let Some(gap) = gap {
        let mut earlier = prior_value;
        for (later, session) in &active {
            if let Some(earlier) = earlier {
                if later - earlier > gap && *session {
                    returns += 1;
                }
            }
            earlier = Some(*later);
        }
    }
    let keys = PyList::new(py, keys)?;
    let active = PyList::new(py, active.iter().map(|m| m.0))?;
    Ok(running.call1((buckets, sums, keys, active, returns, prior, gap))?)
}
