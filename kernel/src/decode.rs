//! The fast path of `stream.core.decode.decode_event`: the Event of a valid native message
//! with flat properties, or None for anything else (the caller then runs `decode_event`,
//! which decides every rejection and every unusual shape exactly as before).
//!
//! It accepts a subset of what Python's `_fast` accepts: JSON objects without nesting
//! beyond `properties`, an integer timestamp or ISO text of the form
//! `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff](Z|±HH:MM)`, and an ASCII customer id. On what it
//! accepts, it returns the Event `decode_event` returns.

use std::collections::{HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyString};

static EVENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const NATIVE: [&str; 5] = ["event_id", "customer_id", "type", "timestamp", "properties"];
const NOT_NATIVE: [&str; 6] = ["track", "page", "screen", "alias", "identify", "group"];
const MAX_SESSION_SECONDS: f64 = 7.0 * 86_400.0;
const MAX_PAGE_COUNT: f64 = 1_000_000.0;

/// A JSON value of a flat document.
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Object(Vec<(String, Value)>),
}

/// The decoder of one model and one set of limits.
#[pyclass(module = "engagement_kernel", frozen)]
pub struct FastDecoder {
    events: HashSet<String>,
    topic_types: HashMap<String, HashSet<String>>,
    max_future_skew_ms: i64,
    window_ms: i64,
    bucket_ms: i64,
    max_bytes: usize,
    max_id_length: usize,
    max_id_bytes: usize,
    max_json_depth: i64,
}

fn strings(set: &Bound<'_, PyAny>) -> PyResult<HashSet<String>> {
    let mut out = HashSet::new();
    for item in set.try_iter()? {
        out.insert(item?.extract::<String>()?);
    }
    Ok(out)
}

#[pymethods]
impl FastDecoder {
    /// `FastDecoder(model, limits)`: a ScoringModel and DecodeLimits.
    #[new]
    fn new(model: &Bound<'_, PyAny>, limits: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut topic_types = HashMap::new();
        let types = model.getattr("topic_types")?;
        for item in types.call_method0("items")?.try_iter()? {
            let (role, kinds): (String, Bound<'_, PyAny>) = item?.extract()?;
            topic_types.insert(role, strings(&kinds)?);
        }
        let max_id_length: usize = limits.getattr("max_id_length")?.extract()?;
        let max_id_bytes: Option<usize> = limits.getattr("max_id_bytes")?.extract()?;
        Ok(Self {
            events: strings(&model.getattr("events")?)?,
            topic_types,
            max_future_skew_ms: model.getattr("max_future_skew_ms")?.extract()?,
            window_ms: model.getattr("window_ms")?.extract()?,
            bucket_ms: model.getattr("bucket_ms")?.extract()?,
            max_bytes: limits.getattr("max_bytes")?.extract()?,
            max_id_length,
            max_id_bytes: max_id_bytes.unwrap_or(4 * max_id_length),
            max_json_depth: limits.getattr("max_json_depth")?.extract()?,
        })
    }

    /// The Event of a plain valid native message, or None.
    #[pyo3(signature = (raw, key, topic_role, now_ms, fallback_id, replay=false))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        raw: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        topic_role: &str,
        now_ms: i64,
        fallback_id: &Bound<'py, PyAny>,
        replay: bool,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (Ok(raw), Ok(key)) = (raw.cast::<PyBytes>(), key.cast::<PyBytes>()) else {
            return Ok(None); // not bytes, or no key: Python's path
        };
        let Some(found) = self.accept(raw.as_bytes(), key, topic_role, now_ms, replay) else {
            return Ok(None);
        };
        let (event_id, customer_id, kind, timestamp_ms, properties) = found;
        let props = PyDict::new(py);
        for (name, value) in properties {
            props.set_item(name, to_python(py, value)?)?;
        }
        let event_id = match event_id {
            Some(text) => PyString::new(py, &text).into_any(),
            None => fallback_id.clone(),
        };
        let event = EVENT.get_or_try_init(py, || {
            py.import("stream.core.events")?.getattr("Event").map(Bound::unbind)
        })?;
        let args = (event_id, customer_id, kind, timestamp_ms, props, py.None(), py.None());
        Ok(Some(event.bind(py).call1(args)?))
    }
}

type Found = (Option<String>, String, String, i64, Vec<(String, Value)>);

impl FastDecoder {
    fn accept(
        &self,
        raw: &[u8],
        key: &Bound<'_, PyBytes>,
        role: &str,
        now_ms: i64,
        replay: bool,
    ) -> Option<Found> {
        if raw.len() > self.max_bytes || self.max_json_depth < 2 {
            return None;
        }
        let Value::Object(members) = Parser::new(raw).document()? else {
            return None;
        };
        let mut fields: [Option<Value>; 5] = [None, None, None, None, None];
        for (name, value) in members {
            let index = NATIVE.iter().position(|n| *n == name)?;
            if fields[index].is_some() {
                return None; // a repeated member: Python's path decides
            }
            fields[index] = Some(value);
        }
        let [event_id, customer_id, kind, timestamp, properties] = fields;
        let Some(Value::Str(kind)) = kind else { return None };
        if NOT_NATIVE.contains(&kind.as_str()) || !self.events.contains(&kind) {
            return None;
        }
        if let Some(allowed) = self.topic_types.get(role) {
            if !allowed.contains(&kind) {
                return None;
            }
        }
        let Some(Value::Str(customer_id)) = customer_id else { return None };
        if !self.valid_ascii_id(&customer_id) || key.as_bytes() != customer_id.as_bytes() {
            return None;
        }
        let properties = match properties {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(members)) => members,
            Some(_) => return None,
        };
        if properties.iter().any(|(_, v)| matches!(v, Value::Object(_))) {
            return None;
        }
        let timestamp_ms = match timestamp {
            Some(Value::Int(ms)) if ms > 0 => ms,
            Some(Value::Str(text)) => iso_ms(&text).filter(|ms| *ms > 0)?,
            _ => return None,
        };
        if timestamp_ms > now_ms.checked_add(self.max_future_skew_ms)? {
            return None;
        }
        if !replay && timestamp_ms < self.live_from(now_ms) {
            return None;
        }
        let event_id = match event_id {
            None | Some(Value::Null) => None,
            Some(Value::Str(text)) if text.is_empty() => None,
            Some(Value::Str(text)) if text.chars().count() <= self.max_id_length => Some(text),
            Some(_) => return None,
        };
        if !checked_properties(&kind, &properties) {
            return None;
        }
        Some((event_id, customer_id, kind, timestamp_ms, properties))
    }

    /// `valid_customer_id` for an ASCII id (anything else: Python's path).
    fn valid_ascii_id(&self, id: &str) -> bool {
        id.is_ascii()
            && !id.is_empty()
            && id.len() <= self.max_id_length.min(self.max_id_bytes)
            && !id.bytes().any(|b| b < 0x20 || b == 0x7f)
    }

    /// `ScoringModel.live_from`.
    fn live_from(&self, now_ms: i64) -> i64 {
        ((now_ms - self.window_ms).div_euclid(self.bucket_ms) + 1) * self.bucket_ms
    }
}

/// `_check_properties` holds (false: Python's path reports the problem).
fn checked_properties(kind: &str, properties: &[(String, Value)]) -> bool {
    let get = |name: &str| properties.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
    let number = |name: &str, low: f64, high: f64, integral: bool| match get(name) {
        Some(Value::Int(v)) => (low..=high).contains(&(*v as f64)),
        Some(Value::Float(v)) if !integral => v.is_finite() && (low..=high).contains(v),
        _ => false,
    };
    match kind {
        "session_end" => {
            number("duration_seconds", 0.0, MAX_SESSION_SECONDS, false)
                && number("page_count", 0.0, MAX_PAGE_COUNT, true)
        }
        "survey_response" => {
            let (nps, csat) = (get("nps").is_some(), get("csat").is_some());
            (nps || csat)
                && (!nps || number("nps", 0.0, 10.0, true))
                && (!csat || number("csat", 1.0, 5.0, true))
        }
        _ => true,
    }
}

fn to_python<'py>(py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(v) => v.into_bound_py_any(py),
        Value::Int(v) => v.into_bound_py_any(py),
        Value::Float(v) => v.into_bound_py_any(py),
        Value::Str(v) => Ok(PyString::new(py, &v).into_any()),
        Value::Object(_) => Err(pyo3::exceptions::PyValueError::new_err("nested object")),
    }
}

// ---------------------------------------------------------------------------------------
// ISO text: `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff](Z|±HH:MM)` only

fn digits(text: &[u8], from: usize, count: usize) -> Option<i64> {
    let part = text.get(from..from + count)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `round(datetime.fromisoformat(text).timestamp() * 1000)` for the accepted form.
fn iso_ms(text: &str) -> Option<i64> {
    let t = text.as_bytes();
    if t.len() < 20 || t[4] != b'-' || t[7] != b'-' || t[10] != b'T' || t[13] != b':' {
        return None;
    }
    if t[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(t, 0, 4)?, digits(t, 5, 2)?, digits(t, 8, 2)?);
    let (hour, minute, second) = (digits(t, 11, 2)?, digits(t, 14, 2)?, digits(t, 17, 2)?);
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut micros = 0;
    if t[at] == b'.' {
        let count = t[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        micros = match count {
            3 => digits(t, at + 1, 3)? * 1000,
            6 => digits(t, at + 1, 6)?,
            _ => return None,
        };
        at += 1 + count;
    }
    let offset_s = match &t[at..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2], 0, 2)?;
            let minutes = digits(&[*m1, *m2], 0, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    // timedelta.total_seconds(): exact microseconds / 10**6, then * 1000, then round().
    let total_us = seconds.checked_mul(1_000_000)?.checked_add(micros)?;
    if total_us.unsigned_abs() >= 1 << 53 {
        return None;
    }
    let millis = (total_us as f64 / 1e6 * 1000.0).round_ties_even();
    Some(millis as i64)
}

// ---------------------------------------------------------------------------------------
// JSON: a document, at most one level of nesting; anything unusual gives None

struct Parser<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn document(&mut self) -> Option<Value> {
        self.space();
        let value = self.value(0)?;
        self.space();
        (self.at == self.data.len()).then_some(value)
    }

    fn space(&mut self) {
        while matches!(self.data.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn eat(&mut self, literal: &[u8]) -> Option<()> {
        if self.data.get(self.at..self.at + literal.len())? == literal {
            self.at += literal.len();
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, depth: u8) -> Option<Value> {
        match self.peek()? {
            b'{' if depth < 2 => self.object(depth + 1),
            b'"' => self.string().map(Value::Str),
            b't' => self.eat(b"true").map(|()| Value::Bool(true)),
            b'f' => self.eat(b"false").map(|()| Value::Bool(false)),
            b'n' => self.eat(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self, depth: u8) -> Option<Value> {
        self.at += 1;
        let mut members = Vec::new();
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Object(members));
        }
        loop {
            self.space();
            let name = self.string()?;
            self.space();
            self.eat(b":")?;
            self.space();
            let value = self.value(depth)?;
            members.push((name, value));
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Value::Object(members));
                }
                _ => return None,
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b"\"")?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = *self.data.get(self.at)?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escape = *self.data.get(self.at)?;
                    self.at += 1;
                    let ch = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
                }
                0..0x20 => return None,
                _ => out.push(byte),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let part = self.data.get(self.at..self.at + 4)?;
        let text = std::str::from_utf8(part).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(text, 16).ok()
    }

    /// `\uXXXX`, a surrogate pair joined; a lone surrogate gives None.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            self.eat(b"\\u")?;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            return char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00));
        }
        char::from_u32(first)
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let int_digits = self.at - int_start;
        if int_digits == 0 || (int_digits > 1 && self.data[int_start] == b'0') {
            return None;
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.at += 1;
            let from = self.at;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.at += 1;
            }
            if self.at == from {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            let from = self.at;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.at += 1;
            }
            if self.at == from {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.data[start..self.at]).ok()?;
        if float {
            let value: f64 = text.parse().ok()?;
            return value.is_finite().then_some(Value::Float(value));
        }
        if int_digits > 18 {
            return None; // beyond what every parser agrees on: Python's path
        }
        text.parse().ok().map(Value::Int)
    }
}

/// The names `decode_event` never takes the fast path for (exposed for the tests).
#[pyfunction]
pub fn not_native<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
    PyFrozenSet::new(py, NOT_NATIVE)
}
