//! `streamfold_edge`: the per-event ingestion hot path of `api/routes/ingest.py`, compiled.
//!
//! For one request body it does what the Python path does between the parsed body and the
//! Kafka produce calls (`jsontext.loads` -> `read_request` -> `decode_events` ->
//! `Recorder.record` / `TrackedEvent.to_json`), and gives byte-identical results. Where it
//! cannot promise that, it raises `Fallback` and the caller runs the Python path for the
//! whole request (or, from `Validator(...)`, for every request of that system): the Python
//! path stays the reference, and makes every error message itself.
//!
//! Python API (module `streamfold_edge`):
//! - `parse_request(body: bytes, call_type: str | None) -> Request`
//! - `Request.write_key: str | None`, `Request.count: int`,
//!   `Request.decode(*, system_id, partner_id, received_at_us, producer, max_event_bytes,
//!   fingerprint, structures, reject_unknown) -> list[tuple]`
//! - `Validator(schema_json: str)`, `Validator.is_valid_json(instance_json: str) -> bool`
//! - `batch_response(outcomes: list[tuple]) -> bytes`
//! - `container_file(header, sync, records, skip) -> bytes` (`container.rs`: the staged
//!   sink's Avro container file)
//! - `Fallback` (an `Exception`)
//!
//! See `pipeline/edge/native/README.md` for what falls back and how to build.

mod avro;
mod container;
mod event;
mod floats;
mod json;
mod schema;
mod times;

use std::collections::HashMap;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyModule, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};
use serde_json::{Map, Value};

use event::{Batch, CallType, Stop, TimeReader, Tracked};

create_exception!(
    streamfold_edge,
    Fallback,
    PyException,
    "The input is outside what the compiled path reproduces exactly: run the Python path \
     (for the whole request, or, raised by Validator(), for that system's requests)."
);

fn fallback(why: &str) -> PyErr {
    Fallback::new_err(why.to_owned())
}

/// A request body split as `tracking.read_request` splits it (`SdkRequest`).
#[pyclass(frozen, module = "streamfold_edge")]
pub struct Request {
    events: Vec<Value>,
    write_key: Option<String>,
    /// the batch's `sentAt` (else `sent_at`) as sent, JSON null included
    sent_at: Option<Value>,
    context: Map<String, Value>,
    call_type: Option<CallType>,
    /// `{}`, what absent properties/traits read as (borrowed by decoded events)
    empty: Value,
}

/// `_write_key`: the body's `writeKey` when it is a non-empty string.
fn write_key_of(body: &Value) -> Option<String> {
    match body.get("writeKey") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The body of an ingestion request (already gunzipped) read as `jsontext.loads` and
/// `tracking.read_request` read it. `call_type`: None for `/v1/batch`, else the route's
/// call type (track, identify, page, screen, group, alias).
///
/// Raises `Fallback` for a body outside what is reproduced exactly (see `json.rs`: not
/// JSON, NaN/Infinity, lone surrogates, integers past 64 bits, nesting past 128 levels, a
/// BOM) and for one `read_request` refuses (not `{"batch": [...]}` or an array; a
/// non-object `context`): the Python path then answers with its own error.
/// `ValueError` for an unknown `call_type` (a caller bug).
#[pyfunction]
#[pyo3(signature = (body, call_type))]
fn parse_request(py: Python<'_>, body: &[u8], call_type: Option<&str>) -> PyResult<Request> {
    let call_type = match call_type {
        None => None,
        Some(t) => Some(
            CallType::parse(t).ok_or_else(|| PyValueError::new_err(format!("call_type {t:?}")))?,
        ),
    };
    let parsed = py
        .detach(|| json::parse(body))
        .map_err(|_| fallback("body"))?;
    let mut request = Request {
        events: Vec::new(),
        write_key: write_key_of(&parsed),
        sent_at: None,
        context: Map::new(),
        call_type,
        empty: Value::Object(Map::new()),
    };
    if call_type.is_some() {
        request.events.push(parsed);
        return Ok(request);
    }
    match parsed {
        Value::Array(events) => request.events = events,
        Value::Object(mut body) => {
            request.sent_at = match body.get("sentAt") {
                Some(v) => Some(v.clone()),
                None => body.get("sent_at").cloned(),
            };
            match body.swap_remove("context") {
                None | Some(Value::Null) => {}
                Some(Value::Object(context)) => request.context = context,
                Some(_) => return Err(fallback("context")),
            }
            match body.swap_remove("batch") {
                Some(Value::Array(events)) => request.events = events,
                _ => return Err(fallback("batch")),
            }
        }
        _ => return Err(fallback("batch")),
    }
    Ok(request)
}

/// `datetime` arithmetic in Python for the time forms not parsed natively (a helper
/// module compiled once; it repeats `tracking._instant`'s two expressions).
static TIME_HELPERS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

const TIME_HELPERS_SRC: &std::ffi::CStr = cr#"
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def iso(text):
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return (parsed.astimezone(UTC) - _EPOCH) // _US
    except (ValueError, OverflowError):
        return None


def epoch(raw):
    try:
        if raw > 1e11:
            return (_EPOCH + timedelta(milliseconds=raw) - _EPOCH) // _US
        return (_EPOCH + timedelta(seconds=raw) - _EPOCH) // _US
    except (ValueError, OverflowError):
        return None
"#;

struct PyTimes<'py> {
    py: Python<'py>,
}

impl PyTimes<'_> {
    fn call(&self, name: &str, arg: Bound<'_, PyAny>) -> Result<Option<i64>, json::Unsupported> {
        let module = TIME_HELPERS
            .get_or_try_init(self.py, || {
                PyModule::from_code(
                    self.py,
                    TIME_HELPERS_SRC,
                    c"streamfold_edge_times.py",
                    c"streamfold_edge_times",
                )
                .map(Bound::unbind)
            })
            .map_err(|_| json::Unsupported)?;
        let result = module
            .bind(self.py)
            .getattr(name)
            .and_then(|f| f.call1((arg,)))
            .map_err(|_| json::Unsupported)?;
        if result.is_none() {
            return Ok(None);
        }
        result
            .extract::<i64>()
            .map(Some)
            .map_err(|_| json::Unsupported)
    }
}

impl TimeReader for PyTimes<'_> {
    fn iso(&mut self, text: &str) -> Result<Option<i64>, json::Unsupported> {
        self.call("iso", PyString::new(self.py, text).into_any())
    }

    fn epoch_float(&mut self, f: f64) -> Result<Option<i64>, json::Unsupported> {
        self.call("epoch", PyFloat::new(self.py, f).into_any())
    }
}

/// A value parsed from JSON as the Python object `jsontext.loads` makes of it.
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)?
            } else if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)?
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(0.0)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn write_opt(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        Some(s) => json::write_orjson_str(s, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// `TrackedEvent.to_json()`: `to_json_dict()` through orjson (insertion order).
fn write_raw_json(e: &Tracked<'_>, system_id: &str, partner_id: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"message_id\":");
    json::write_orjson_str(&e.message_id, out);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(e.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"event\":");
    json::write_orjson_str(e.event, out);
    for (name, value) in [
        (&b",\"user_id\":"[..], e.user_id),
        (b",\"anonymous_id\":", e.anonymous_id),
        (b",\"group_id\":", e.group_id),
        (b",\"previous_id\":", e.previous_id),
        (b",\"category\":", e.category),
    ] {
        out.extend_from_slice(name);
        write_opt(value, out);
    }
    for (name, us) in [
        (&b",\"timestamp\":\""[..], e.timestamp_us),
        (b",\"original_timestamp\":\"", e.original_us),
        (b",\"received_at\":\"", e.received_us),
    ] {
        out.extend_from_slice(name);
        out.extend_from_slice(times::isoformat(us).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"properties\":");
    json::write_orjson(e.properties, false, out);
    out.extend_from_slice(b",\"traits\":");
    json::write_orjson(e.traits, false, out);
    out.extend_from_slice(b",\"context\":");
    json::write_orjson_entries(
        e.context.iter().map(|(k, v)| (*k, *v)),
        e.context.len(),
        false,
        out,
    );
    out.extend_from_slice(b",\"system_id\":");
    json::write_orjson_str(system_id, out);
    out.extend_from_slice(b",\"partner_id\":");
    json::write_orjson_str(partner_id, out);
    out.push(b'}');
}

#[pymethods]
impl Request {
    /// `read_request(...).write_key`: the body's `writeKey` if a non-empty string.
    #[getter]
    fn write_key(&self) -> Option<&str> {
        self.write_key.as_deref()
    }

    /// The number of events (`len(read_request(...).events)`).
    #[getter]
    fn count(&self) -> usize {
        self.events.len()
    }

    /// Every event, in order, as the Python path would end it for a system whose view has
    /// `structures` (event name -> `(Validator, required, version)`) and, for names without
    /// one, refuses them (`reject_unknown`) or records them:
    ///
    /// - `("recorded", message_id, avro_bytes)`: `Recorder.record`'s single-object bytes
    ///   (TrackingEventRecorded v2; `fingerprint` is its 8-byte CRC-64-AVRO fingerprint);
    /// - `("raw", message_id, json_bytes)`: refused by the recorder (unknown name under
    ///   reject, properties invalid against a required structure): `TrackedEvent.to_json()`;
    /// - `("rejected", reason, message, raw_event)`: `decode_events`' `EventRejection`, and
    ///   the event as `jsontext.loads` made it.
    ///
    /// `received_at_us`: the server time, microseconds since 1970 (UTC); `max_event_bytes`:
    /// `decode_events`' limit. Raises `Fallback` for an event whose outcome is not
    /// reproduced exactly (none known today but a `received_at_us` within a day of year
    /// 9999, a structure version outside Avro's 32-bit int, and Python's own time
    /// arithmetic raising something else than ValueError/OverflowError); `ValueError` for a
    /// fingerprint that is not 8 bytes, `TypeError` for a malformed `structures`.
    #[pyo3(signature = (*, system_id, partner_id, received_at_us, producer, max_event_bytes,
                        fingerprint, structures, reject_unknown))]
    #[allow(clippy::too_many_arguments)]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        system_id: &str,
        partner_id: &str,
        received_at_us: i64,
        producer: &str,
        max_event_bytes: usize,
        fingerprint: &[u8],
        structures: &Bound<'py, PyDict>,
        reject_unknown: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        if fingerprint.len() != 8 {
            return Err(PyValueError::new_err("fingerprint must be 8 bytes"));
        }
        if !event::received_ok(received_at_us) {
            return Err(fallback("received_at_us"));
        }
        let mut views: HashMap<String, (Bound<'py, Validator>, bool, i32)> = HashMap::new();
        for (name, entry) in structures.iter() {
            let name: String = name.extract()?;
            let (validator, required, version): (Bound<'py, PyAny>, bool, i64) = entry.extract()?;
            let validator = validator.cast_into::<Validator>()?;
            let version = i32::try_from(version).map_err(|_| fallback("structure version"))?;
            views.insert(name, (validator, required, version));
        }
        let batch = Batch {
            system_id,
            received_us: received_at_us,
            max_event_bytes,
            sent_at: self.sent_at.as_ref(),
            context: &self.context,
            call_type: self.call_type,
            empty: &self.empty,
        };
        let env = avro::Envelope {
            fingerprint,
            producer,
            system_id,
            partner_id,
            actor: &format!("sdk:{system_id}"),
        };
        let recorded = intern!(py, "recorded");
        let raw_tag = intern!(py, "raw");
        let rejected = intern!(py, "rejected");
        let mut reader = PyTimes { py };
        let out = PyList::empty(py);
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        let mut scratch: Vec<u8> = Vec::with_capacity(512);
        for raw in &self.events {
            let tracked = match event::parse_event(raw, &batch, &mut reader) {
                Ok(t) => t,
                Err(Stop::Reject(r)) => {
                    let item = [
                        rejected.clone().into_any(),
                        PyString::new(py, r.reason.as_str()).into_any(),
                        PyString::new(py, &r.message).into_any(),
                        to_py(py, raw)?,
                    ];
                    out.append(PyTuple::new(py, item)?)?;
                    continue;
                }
                Err(Stop::Unsupported) => return Err(fallback("event")),
            };
            // Recorder.check: the structure of the event's name, or the unknown-name policy
            let (schema_valid, version, refuse) = match views.get(tracked.event) {
                None => (true, None, reject_unknown),
                Some((validator, required, version)) => {
                    let valid = validator.get().inner.is_valid(tracked.properties);
                    (valid, Some(*version), !valid && *required)
                }
            };
            buf.clear();
            let tag = if refuse {
                write_raw_json(&tracked, system_id, partner_id, &mut buf);
                raw_tag
            } else {
                avro::encode_recorded(
                    &tracked,
                    &env,
                    schema_valid,
                    version,
                    &mut buf,
                    &mut scratch,
                );
                recorded
            };
            let item = [
                tag.clone().into_any(),
                PyString::new(py, &tracked.message_id).into_any(),
                PyBytes::new(py, &buf).into_any(),
            ];
            out.append(PyTuple::new(py, item)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("<streamfold_edge.Request of {} events>", self.events.len())
    }
}

/// A structure's JSON Schema, compiled (see `schema.rs`).
#[pyclass(frozen, module = "streamfold_edge")]
pub struct Validator {
    inner: jsonschema::Validator,
}

#[pymethods]
impl Validator {
    /// Compile `schema_json` (a structure's `json_schema` text). Raises `Fallback` when the
    /// schema is not JSON we read exactly or uses anything whose verdict may differ from
    /// Python's `jsonschema` (see `schema.rs`): that system's events are then validated in
    /// Python.
    #[new]
    fn new(py: Python<'_>, schema_json: &str) -> PyResult<Self> {
        let schema = json::parse(schema_json.as_bytes()).map_err(|_| fallback("schema JSON"))?;
        let inner = py
            .detach(|| schema::compile(&schema))
            .map_err(|schema::Refused(why)| Fallback::new_err(why))?;
        Ok(Validator { inner })
    }

    /// Whether the JSON text `instance_json` is valid (for tests and tools; `decode`
    /// validates parsed properties directly). Raises `Fallback` for text not read exactly.
    fn is_valid_json(&self, instance_json: &str) -> PyResult<bool> {
        let instance =
            json::parse(instance_json.as_bytes()).map_err(|_| fallback("instance JSON"))?;
        Ok(self.inner.is_valid(&instance))
    }
}

/// The `/v1/batch` 200 body `api.routes.ingest.batch` builds from `decode`'s outcomes, as
/// `jsontext.dumps` writes it: `{"success": true, "accepted", "rejected", "results"}`,
/// one result per event in order (`{"index", "message_id", "status": "accepted"}` for a
/// recorded or raw event, `{"index", "status": "rejected", "reason", "message"}` else).
#[pyfunction]
fn batch_response<'py>(
    py: Python<'py>,
    outcomes: &Bound<'py, PyList>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut results: Vec<u8> = Vec::with_capacity(64 * outcomes.len() + 64);
    let mut accepted = 0usize;
    for (index, outcome) in outcomes.iter().enumerate() {
        let outcome = outcome.cast_into::<PyTuple>()?;
        let tag: String = outcome.get_item(0)?.extract()?;
        if index > 0 {
            results.push(b',');
        }
        results.extend_from_slice(format!("{{\"index\":{index},").as_bytes());
        match tag.as_str() {
            "recorded" | "raw" => {
                accepted += 1;
                let id: String = outcome.get_item(1)?.extract()?;
                results.extend_from_slice(b"\"message_id\":");
                json::write_orjson_str(&id, &mut results);
                results.extend_from_slice(b",\"status\":\"accepted\"}");
            }
            "rejected" => {
                let reason: String = outcome.get_item(1)?.extract()?;
                let message: String = outcome.get_item(2)?.extract()?;
                results.extend_from_slice(b"\"status\":\"rejected\",\"reason\":");
                json::write_orjson_str(&reason, &mut results);
                results.extend_from_slice(b",\"message\":");
                json::write_orjson_str(&message, &mut results);
                results.push(b'}');
            }
            other => return Err(PyValueError::new_err(format!("unknown outcome {other:?}"))),
        }
    }
    let mut body = format!(
        "{{\"success\":true,\"accepted\":{accepted},\"rejected\":{},\"results\":[",
        outcomes.len() - accepted
    )
    .into_bytes();
    body.extend_from_slice(&results);
    body.extend_from_slice(b"]}");
    Ok(PyBytes::new(py, &body))
}

#[pymodule]
fn streamfold_edge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Fallback", m.py().get_type::<Fallback>())?;
    m.add_class::<Request>()?;
    m.add_class::<Validator>()?;
    m.add_function(wrap_pyfunction!(parse_request, m)?)?;
    m.add_function(wrap_pyfunction!(batch_response, m)?)?;
    m.add_function(wrap_pyfunction!(container::container_file, m)?)?;
    Ok(())
}
