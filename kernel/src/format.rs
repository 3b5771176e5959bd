//! Text exactly as Python writes it: `f"{x:g}"`, orjson's floats, and `iso_ms`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Largest magnitude of an integer that converts to f64 exactly (and so divides by 100
/// exactly as Python's `int / 100`, which rounds once).
pub const EXACT: i64 = 1 << 53;

/// The last moment `iso_ms` handles itself (9999-12-31T23:59:59.999Z).
const LAST_MS: i64 = 253_402_300_799_999;

/// `f"{x:g}"` (six significant digits) for a finite float.
pub fn g(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    if (-4..6).contains(&exp) {
        let fixed = format!("{:.*}", (5 - exp) as usize, x);
        strip_zeros(&fixed).to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", strip_zeros(mantissa), sign, exp.abs())
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// orjson's text for `cp / 100` with `|cp| <= EXACT` (always in its plain decimal range).
pub fn push_points(out: &mut Vec<u8>, cp: i64) {
    let x = cp as f64 / 100.0;
    let text = format!("{x}");
    out.extend_from_slice(text.as_bytes());
    if !text.contains('.') {
        out.extend_from_slice(b".0");
    }
}

/// `iso_ms(ms)` of `stream.adapters.codec` (datetime.fromtimestamp(ms / 1000, UTC)
/// .isoformat(timespec="milliseconds")), or None outside years 1970-9999.
pub fn iso(ms: i64) -> Option<String> {
    if !(0..=LAST_MS).contains(&ms) {
        return None;
    }
    // CPython's float-seconds path: modf, the fraction in microseconds rounded half-even.
    let t = ms as f64 / 1000.0;
    let mut whole = t.trunc();
    let mut micros = ((t - whole) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        whole += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        whole -= 1.0;
    }
    let secs = whole as i64;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    if year > 9999 {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        micros as i64 / 1000
    ))
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `f"{x:g}"` (exposed for the tests).
#[pyfunction]
pub fn format_g(x: f64) -> PyResult<String> {
    if !x.is_finite() {
        return Err(PyValueError::new_err("format_g takes a finite float"));
    }
    Ok(g(x))
}

/// `stream.adapters.codec.iso_ms` for 1970 to 9999 (exposed for the tests).
#[pyfunction]
pub fn iso_ms(ms: i64) -> PyResult<String> {
    iso(ms).ok_or_else(|| PyValueError::new_err("iso_ms handles years 1970 to 9999"))
}
