//! The state codec of the score table: `stream.adapters.redis_fields.state_values` and
//! `state_from_fields`, with the `state` field of `stream.adapters.redis_state` (layout 1)
//! and the `history` field. Anything not handled here goes to those Python functions.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString, PyTuple};

use crate::format::{self, EXACT};

/// Not handled here: the Python reference does it (and raises what it raises).
pub struct Defer;

impl From<PyErr> for Defer {
    fn from(_: PyErr) -> Self {
        Defer
    }
}

type Fast<T> = Result<T, Defer>;

/// The Python classes and reference functions the codec builds or defers to.
struct Refs {
    customer_state: Py<PyAny>,
    alert_gate: Py<PyAny>,
    rule_gate: Py<PyAny>,
    state_values: Py<PyAny>,
    state_from_fields: Py<PyAny>,
    history_to_bytes: Py<PyAny>,
    history_from_bytes: Py<PyAny>,
    markers_to_json: Py<PyAny>,
    markers_from_json: Py<PyAny>,
}

static REFS: PyOnceLock<Refs> = PyOnceLock::new();

fn refs(py: Python<'_>) -> PyResult<&Refs> {
    REFS.get_or_try_init(py, || {
        let customer = py.import("stream.core.customer")?;
        let alerts = py.import("stream.core.alerts")?;
        let fields = py.import("stream.adapters.redis_fields")?;
        let get = |m: &Bound<'_, PyModule>, name: &str| m.getattr(name).map(Bound::unbind);
        Ok(Refs {
            customer_state: get(&customer, "CustomerState")?,
            alert_gate: get(&alerts, "AlertGate")?,
            rule_gate: get(&alerts, "RuleGate")?,
            state_values: get(&fields, "state_values")?,
            state_from_fields: get(&fields, "state_from_fields")?,
            history_to_bytes: get(&fields, "history_to_bytes")?,
            history_from_bytes: get(&fields, "history_from_bytes")?,
            markers_to_json: get(&fields, "markers_to_json")?,
            markers_from_json: get(&fields, "markers_from_json")?,
        })
    })
}

// ---------------------------------------------------------------------------------------
// Encoding

/// `state_values(state, breakdown, model_version, partition, bucket_ms)`: the values of
/// `STATE_FIELDS`, in order, exactly as the Python reference returns them.
#[pyfunction]
pub fn state_values<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    breakdown: &Bound<'py, PyAny>,
    model_version: &Bound<'py, PyAny>,
    partition: &Bound<'py, PyAny>,
    bucket_ms: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match encode(py, state, breakdown, model_version, partition, bucket_ms) {
        Ok(values) => Ok(values.into_any()),
        Err(Defer) => refs(py)?
            .state_values
            .bind(py)
            .call1((state, breakdown, model_version, partition, bucket_ms)),
    }
}

fn encode<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    breakdown: &Bound<'py, PyAny>,
    model_version: &Bound<'py, PyAny>,
    partition: &Bound<'py, PyAny>,
    bucket_ms: &Bound<'py, PyAny>,
) -> Fast<Bound<'py, PyTuple>> {
    let score_cp = exact_int(&state.getattr(intern!(py, "score_cp"))?)?;
    let score = format::g(score_cp as f64 / 100.0);
    let band = state.getattr(intern!(py, "band"))?;
    let band = if band.is_truthy()? { band } else { PyString::new(py, "").into_any() };
    let updated_ms: i64 = state.getattr(intern!(py, "updated_ms"))?.extract()?;
    let updated = format::iso(updated_ms).ok_or(Defer)?;
    let breakdown_json = encode_breakdown(breakdown.cast::<PyDict>().map_err(|_| Defer)?)?;
    if !model_version.is_exact_instance_of::<PyString>() {
        return Err(Defer);
    }
    let packed = pack_state(py, state, model_version, partition, updated_ms)?;
    let bucket_ms: i64 = bucket_ms.extract()?;
    let history = history_bytes(&state.getattr(intern!(py, "history"))?, bucket_ms)?;
    let markers = state.getattr(intern!(py, "markers"))?;
    let markers = if markers.is_truthy()? {
        refs(py)?.markers_to_json.bind(py).call1((markers,))?
    } else {
        PyBytes::new(py, b"").into_any()
    };
    let values: [Bound<'py, PyAny>; 8] = [
        PyString::new(py, &score).into_any(),
        band,
        PyString::new(py, &updated).into_any(),
        PyBytes::new(py, &breakdown_json).into_any(),
        model_version.clone(),
        PyBytes::new(py, &packed).into_any(),
        PyBytes::new(py, &history).into_any(),
        markers,
    ];
    Ok(PyTuple::new(py, values)?)
}

/// An int (not a bool) that converts to f64 exactly.
fn exact_int(value: &Bound<'_, PyAny>) -> Fast<i64> {
    if !value.is_exact_instance_of::<PyInt>() {
        return Err(Defer);
    }
    let value: i64 = value.extract()?;
    if value.unsigned_abs() > EXACT.unsigned_abs() {
        return Err(Defer);
    }
    Ok(value)
}

/// A str that JSON writes as it is (no character orjson escapes).
fn plain_key<'a>(key: &'a Bound<'_, PyAny>) -> Fast<std::borrow::Cow<'a, str>> {
    let key = key.cast::<PyString>().map_err(|_| Defer)?;
    let text = key.to_cow()?;
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return Err(Defer);
    }
    Ok(text)
}

/// `orjson.dumps({k: v / 100 ...}, option=OPT_SORT_KEYS)`.
fn encode_breakdown(breakdown: &Bound<'_, PyDict>) -> Fast<Vec<u8>> {
    let mut items: Vec<(String, i64)> = Vec::with_capacity(breakdown.len());
    for (key, value) in breakdown.iter() {
        if !key.is_exact_instance_of::<PyString>() {
            return Err(Defer);
        }
        items.push((plain_key(&key)?.into_owned(), exact_int(&value)?));
    }
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(16 + items.len() * 24);
    out.push(b'{');
    for (index, (key, cp)) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_key(&mut out, key);
        format::push_points(&mut out, *cp);
    }
    out.push(b'}');
    Ok(out)
}

/// An integer in decimal, without an allocation.
fn push_int(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

const ARMED: u16 = 1;
const ONBOARDED: u16 = 2;
const LAST: u16 = 4;
const FIRST: u16 = 8;
const PRIOR: u16 = 16;
const OWN: u16 = 32;
const UNKNOWN: u16 = 64;

fn optional_i64(value: &Bound<'_, PyAny>) -> Fast<Option<i64>> {
    if value.is_none() {
        return Ok(None);
    }
    Ok(Some(value.extract()?))
}

/// `pack_state(Internal(...))` of `stream.adapters.redis_state` (layout 1).
fn pack_state<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    model_version: &Bound<'py, PyAny>,
    partition: &Bound<'py, PyAny>,
    updated_ms: i64,
) -> Fast<Vec<u8>> {
    let gate = state.getattr(intern!(py, "gate"))?;
    let mut flags: u16 = 0;
    if gate.getattr(intern!(py, "armed"))?.is_truthy()? {
        flags |= ARMED;
    }
    if gate.getattr(intern!(py, "onboarded"))?.is_truthy()? {
        flags |= ONBOARDED;
    }
    let version = state.getattr(intern!(py, "version"))?;
    let own_version = version.ne(model_version)?;
    let mut own_text: Option<String> = None;
    if own_version {
        if version.is_none() {
            flags |= OWN | UNKNOWN;
        } else {
            flags |= OWN;
            own_text = Some(version.cast::<PyString>().map_err(|_| Defer)?.to_str()?.to_owned());
        }
    }
    let mut longs: Vec<u8> = Vec::with_capacity(24);
    let values = [
        (LAST, gate.getattr(intern!(py, "last_alert_ms"))?),
        (FIRST, state.getattr(intern!(py, "first_seen_ms"))?),
        (PRIOR, state.getattr(intern!(py, "prior_active"))?),
    ];
    for (flag, value) in values {
        if let Some(value) = optional_i64(&value)? {
            flags |= flag;
            longs.extend_from_slice(&value.to_le_bytes());
        }
    }
    let partition: i32 = if partition.is_truthy()? { partition.extract()? } else { 0 };
    let tenure: i32 = state.getattr(intern!(py, "tenure_days"))?.extract()?;
    let rule_gates = state.getattr(intern!(py, "rule_gates"))?;
    let rule_gates = rule_gates.cast::<PyDict>().map_err(|_| Defer)?;
    let count = u16::try_from(rule_gates.len()).map_err(|_| Defer)?;
    let mut out: Vec<u8> = Vec::with_capacity(128);
    out.push(1);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&updated_ms.to_le_bytes());
    out.extend_from_slice(&partition.to_le_bytes());
    out.extend_from_slice(&tenure.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&longs);
    if let Some(text) = own_text {
        push_text(&mut out, &text)?;
    }
    for (name, rule_gate) in rule_gates.iter() {
        let name = name.cast::<PyString>().map_err(|_| Defer)?;
        push_text(&mut out, name.to_str()?)?;
        let last = optional_i64(&rule_gate.getattr(intern!(py, "last_alert_ms"))?)?;
        let armed = rule_gate.getattr(intern!(py, "armed"))?.is_truthy()?;
        // `last or 0`, and the flag only for a last alert that is not None.
        out.push(u8::from(armed) | if last.is_some() { 2 } else { 0 });
        out.extend_from_slice(&last.unwrap_or(0).to_le_bytes());
    }
    encode_window(&state.getattr(intern!(py, "buckets"))?, &mut out)?;
    Ok(out)
}

fn push_text(out: &mut Vec<u8>, text: &str) -> Fast<()> {
    let size = u16::try_from(text.len()).map_err(|_| Defer)?;
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// `orjson.dumps(buckets, option=OPT_NON_STR_KEYS)` for `{int: {str: int}}`.
fn encode_window(buckets: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Fast<()> {
    let buckets = buckets.cast::<PyDict>().map_err(|_| Defer)?;
    out.push(b'{');
    let mut first = true;
    for (bucket, slot) in buckets.iter() {
        if !bucket.is_exact_instance_of::<PyInt>() {
            return Err(Defer);
        }
        let bucket: i64 = bucket.extract()?;
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        push_int(out, bucket);
        out.extend_from_slice(b"\":{");
        let slot = slot.cast::<PyDict>().map_err(|_| Defer)?;
        let mut first_key = true;
        for (key, value) in slot.iter() {
            if !value.is_exact_instance_of::<PyInt>() {
                return Err(Defer);
            }
            let value: i64 = value.extract()?;
            if !first_key {
                out.push(b',');
            }
            first_key = false;
            push_key(out, &plain_key(&key)?);
            push_int(out, value);
        }
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

fn history_bytes(history: &Bound<'_, PyAny>, bucket_ms: i64) -> Fast<Vec<u8>> {
    let history = history.cast::<PyTuple>().map_err(|_| Defer)?;
    let mut out: Vec<u8> = Vec::with_capacity(16 + 16 * history.len());
    out.extend_from_slice(&1i64.to_le_bytes());
    out.extend_from_slice(&bucket_ms.to_le_bytes());
    for point in history.iter() {
        let point = point.cast::<PyTuple>().map_err(|_| Defer)?;
        if point.len() != 2 {
            return Err(Defer);
        }
        for index in 0..2 {
            let value: i64 = point.get_item(index)?.extract()?;
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    Ok(out)
}

/// `history_to_bytes(history, bucket_ms)`.
#[pyfunction]
pub fn history_to_bytes<'py>(
    py: Python<'py>,
    history: &Bound<'py, PyAny>,
    bucket_ms: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let fast = bucket_ms
        .extract::<i64>()
        .map_err(Defer::from)
        .and_then(|ms| history_bytes(history, ms));
    match fast {
        Ok(data) => Ok(PyBytes::new(py, &data).into_any()),
        Err(Defer) => refs(py)?.history_to_bytes.bind(py).call1((history, bucket_ms)),
    }
}

// ---------------------------------------------------------------------------------------
// Decoding

/// `state_from_fields(fields)`: a CustomerState from the hash fields.
#[pyfunction]
pub fn state_from_fields<'py>(
    py: Python<'py>,
    fields: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match decode(py, fields) {
        Ok(state) => Ok(state),
        Err(Defer) => refs(py)?.state_from_fields.bind(py).call1((fields,)),
    }
}

/// `history_from_bytes(raw)`: the bucket length and the points.
#[pyfunction]
pub fn history_from_bytes<'py>(
    py: Python<'py>,
    raw: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let fast = || -> Fast<Bound<'py, PyAny>> {
        if raw.is_none() {
            return Ok((0i64, PyTuple::empty(py)).into_pyobject(py)?.into_any());
        }
        let data = raw.cast::<PyBytes>().map_err(|_| Defer)?.as_bytes();
        if data.is_empty() {
            return Ok((0i64, PyTuple::empty(py)).into_pyobject(py)?.into_any());
        }
        let (bucket_ms, points) = parse_history(py, data)?;
        Ok((bucket_ms, points).into_pyobject(py)?.into_any())
    };
    match fast() {
        Ok(value) => Ok(value),
        Err(Defer) => refs(py)?.history_from_bytes.bind(py).call1((raw,)),
    }
}

fn parse_history<'py>(py: Python<'py>, data: &[u8]) -> Fast<(i64, Bound<'py, PyTuple>)> {
    if data.len() < 16 || data.len() % 16 != 0 || read_i64(data, 0)? != 1 {
        return Err(Defer);
    }
    let bucket_ms = read_i64(data, 8)?;
    let mut points = Vec::with_capacity(data.len() / 16 - 1);
    for at in (16..data.len()).step_by(16) {
        points.push(PyTuple::new(py, [read_i64(data, at)?, read_i64(data, at + 8)?])?);
    }
    Ok((bucket_ms, PyTuple::new(py, points)?))
}

fn read_i64(data: &[u8], at: usize) -> Fast<i64> {
    let bytes = data.get(at..at + 8).ok_or(Defer)?;
    Ok(i64::from_le_bytes(bytes.try_into().map_err(|_| Defer)?))
}

fn read_u16(data: &[u8], at: usize) -> Fast<u16> {
    let bytes = data.get(at..at + 2).ok_or(Defer)?;
    Ok(u16::from_le_bytes(bytes.try_into().map_err(|_| Defer)?))
}

fn read_i32(data: &[u8], at: usize) -> Fast<i32> {
    let bytes = data.get(at..at + 4).ok_or(Defer)?;
    Ok(i32::from_le_bytes(bytes.try_into().map_err(|_| Defer)?))
}

/// A field's bytes: None when absent or None, Defer when not bytes.
fn field<'py>(fields: &Bound<'py, PyDict>, name: &Bound<'py, PyString>) -> Fast<Option<Bound<'py, PyBytes>>> {
    match fields.get_item(name)? {
        None => Ok(None),
        Some(value) if value.is_none() => Ok(None),
        Some(value) => Ok(Some(value.cast_into::<PyBytes>().map_err(|_| Defer)?)),
    }
}

fn read_text(data: &[u8], at: usize) -> Fast<(&str, usize)> {
    let size = read_u16(data, at)? as usize;
    let start = at + 2;
    let bytes = data.get(start..start + size).ok_or(Defer)?;
    Ok((std::str::from_utf8(bytes).map_err(|_| Defer)?, start + size))
}

fn decode<'py>(py: Python<'py>, fields: &Bound<'py, PyAny>) -> Fast<Bound<'py, PyAny>> {
    let fields = fields.cast::<PyDict>().map_err(|_| Defer)?;
    let refs = refs(py)?;
    let Some(raw) = field(fields, intern!(py, "state"))? else {
        return Ok(refs.customer_state.bind(py).call0()?);
    };
    let data = raw.as_bytes();
    if data.is_empty() {
        return Ok(refs.customer_state.bind(py).call0()?);
    }
    if data[0] != 1 || data.len() < 21 {
        return Err(Defer); // the JSON written before layout 1, or not this layout
    }
    let flags = read_u16(data, 1)?;
    let updated = read_i64(data, 3)?;
    let tenure = read_i32(data, 15)?;
    let gates = read_u16(data, 19)?;
    let mut at = 21;
    let mut longs: [Option<i64>; 3] = [None, None, None];
    for (index, flag) in [LAST, FIRST, PRIOR].into_iter().enumerate() {
        if flags & flag != 0 {
            longs[index] = Some(read_i64(data, at)?);
            at += 8;
        }
    }
    let mut own_version: Option<&str> = None;
    if flags & OWN != 0 && flags & UNKNOWN == 0 {
        let (text, next) = read_text(data, at)?;
        own_version = Some(text);
        at = next;
    }
    let rule_gates = PyDict::new(py);
    let rule_gate = refs.rule_gate.bind(py);
    for _ in 0..gates {
        let (name, next) = read_text(data, at)?;
        let gate_flags = *data.get(next).ok_or(Defer)?;
        let last = read_i64(data, next + 1)?;
        at = next + 9;
        let last = if gate_flags & 2 != 0 { Some(last) } else { None };
        rule_gates.set_item(name, rule_gate.call1((gate_flags & 1 != 0, last))?)?;
    }
    let buckets = parse_window(py, &data[at..])?;
    let score = match field(fields, intern!(py, "score"))? {
        Some(score) if !score.as_bytes().is_empty() => parse_score(score.as_bytes())?,
        _ => 0,
    };
    let band = match field(fields, intern!(py, "band"))? {
        Some(band) if !band.as_bytes().is_empty() => {
            let text = std::str::from_utf8(band.as_bytes()).map_err(|_| Defer)?;
            PyString::new(py, text).into_any()
        }
        _ => py.None().into_bound(py),
    };
    let gate = refs.alert_gate.bind(py).call1((
        flags & ARMED != 0,
        longs[0],
        flags & ONBOARDED != 0,
    ))?;
    let history = match field(fields, intern!(py, "history"))? {
        Some(raw) if !raw.as_bytes().is_empty() => parse_history(py, raw.as_bytes())?.1,
        _ => PyTuple::empty(py),
    };
    let markers = match field(fields, intern!(py, "history_markers"))? {
        Some(raw) if !raw.as_bytes().is_empty() => {
            refs.markers_from_json.bind(py).call1((raw,))?
        }
        _ => PyTuple::empty(py).into_any(),
    };
    let version = if flags & OWN != 0 {
        match own_version {
            Some(text) => PyString::new(py, text).into_any(),
            None => py.None().into_bound(py),
        }
    } else {
        match field(fields, intern!(py, "model_version"))? {
            Some(raw) if !raw.as_bytes().is_empty() => {
                let text = std::str::from_utf8(raw.as_bytes()).map_err(|_| Defer)?;
                PyString::new(py, text).into_any()
            }
            _ => py.None().into_bound(py),
        }
    };
    let args: [Bound<'py, PyAny>; 12] = [
        buckets.into_any(),
        score.into_bound_py_any(py)?,
        band,
        gate,
        updated.into_bound_py_any(py)?,
        longs[1].into_bound_py_any(py)?,
        tenure.into_bound_py_any(py)?,
        longs[2].into_bound_py_any(py)?,
        history.into_any(),
        markers,
        version,
        rule_gates.into_any(),
    ];
    Ok(refs.customer_state.bind(py).call1(PyTuple::new(py, args)?)?)
}

/// `round(float(score) * 100)` for a plain decimal number.
fn parse_score(raw: &[u8]) -> Fast<i64> {
    if !raw.iter().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return Err(Defer);
    }
    let text = std::str::from_utf8(raw).map_err(|_| Defer)?;
    let value: f64 = text.parse().map_err(|_| Defer)?;
    let scaled = (value * 100.0).round_ties_even();
    if !scaled.is_finite() || scaled.abs() >= 9.0e18 {
        return Err(Defer);
    }
    Ok(scaled as i64)
}

/// The window JSON `{"<bucket>": {"<factor>": int, ...}, ...}` as orjson writes it, into
/// `{int(bucket): {factor: int}}`; anything else (whitespace, escapes, floats) defers.
fn parse_window<'py>(py: Python<'py>, data: &[u8]) -> Fast<Bound<'py, PyDict>> {
    let mut reader = Reader { data, at: 0 };
    let buckets = PyDict::new(py);
    reader.expect(b'{')?;
    if reader.peek() == Some(b'}') {
        reader.at += 1;
    } else {
        loop {
            let key = reader.string()?;
            let bucket: i64 = parse_int(key)?;
            reader.expect(b':')?;
            reader.expect(b'{')?;
            let slot = PyDict::new(py);
            if reader.peek() == Some(b'}') {
                reader.at += 1;
            } else {
                loop {
                    let name = factor_name(py, reader.string()?)?;
                    reader.expect(b':')?;
                    let value = reader.integer()?;
                    slot.set_item(name, value)?;
                    if reader.next_is(b',')? {
                        continue;
                    }
                    break;
                }
            }
            buckets.set_item(bucket, slot)?;
            if reader.next_is(b',')? {
                continue;
            }
            break;
        }
    }
    if reader.at != data.len() {
        return Err(Defer);
    }
    Ok(buckets)
}

/// Factor names seen in windows, kept as Python strings so each decode does not build them
/// anew (a model has a few dozen; the cache stops growing at `NAMES_KEPT`).
static NAMES: PyOnceLock<std::sync::Mutex<HashMap<Box<[u8]>, Py<PyString>>>> = PyOnceLock::new();
const NAMES_KEPT: usize = 4096;

fn factor_name<'py>(py: Python<'py>, raw: &[u8]) -> Fast<Bound<'py, PyString>> {
    let names = NAMES.get_or_init(py, || std::sync::Mutex::new(HashMap::new()));
    let mut names = names.lock().map_err(|_| Defer)?;
    if let Some(name) = names.get(raw) {
        return Ok(name.bind(py).clone());
    }
    let text = std::str::from_utf8(raw).map_err(|_| Defer)?;
    let name = PyString::new(py, text);
    if names.len() < NAMES_KEPT {
        names.insert(raw.into(), name.clone().unbind());
    }
    Ok(name)
}

fn parse_int(text: &[u8]) -> Fast<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Defer);
    }
    std::str::from_utf8(text).map_err(|_| Defer)?.parse().map_err(|_| Defer)
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Fast<()> {
        if self.peek() != Some(byte) {
            return Err(Defer);
        }
        self.at += 1;
        Ok(())
    }

    /// After a member: true on ',' (another follows), false on '}' (the object ends).
    fn next_is(&mut self, comma: u8) -> Fast<bool> {
        match self.peek() {
            Some(b) if b == comma => {
                self.at += 1;
                Ok(true)
            }
            Some(b'}') => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(Defer),
        }
    }

    /// A string without escapes: its bytes between the quotes.
    fn string(&mut self) -> Fast<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        let rest = &self.data[start..];
        let end = rest.iter().position(|&b| b == b'"').ok_or(Defer)?;
        let text = &rest[..end];
        if text.iter().any(|&b| b == b'\\' || b < 0x20) {
            return Err(Defer);
        }
        self.at = start + end + 1;
        Ok(text)
    }

    fn integer(&mut self) -> Fast<i64> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let text = &self.data[start..self.at];
        // JSON has no leading zeros; a fraction or an exponent is a float (Python's path).
        if text.len() > 1 && (text.starts_with(b"0") || text.starts_with(b"-0")) {
            return Err(Defer);
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(Defer);
        }
        parse_int(text)
    }
}

/// Whether `state_values` handles these arguments itself (false: it defers to Python).
#[pyfunction]
pub fn encodes<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    breakdown: &Bound<'py, PyAny>,
    model_version: &Bound<'py, PyAny>,
    partition: &Bound<'py, PyAny>,
    bucket_ms: &Bound<'py, PyAny>,
) -> bool {
    encode(py, state, breakdown, model_version, partition, bucket_ms).is_ok()
}

/// Whether `state_from_fields` handles these fields itself (false: it defers to Python).
#[pyfunction]
pub fn decodes<'py>(py: Python<'py>, fields: &Bound<'py, PyAny>) -> bool {
    decode(py, fields).is_ok()
}
