//! One Avro object container file of single-object payloads and their Kafka positions,
//! byte-identical to `schemas/container.py: PositionedContainer.file` (the reference; the
//! property tests in `tests/unit/edge/test_container.py` hold the two equal).
//!
//! Layout (Avro 1.11, "Object Container Files"): the header (made once by fastavro, given
//! by the caller), then one block: the record count and the body's byte length as zig-zag
//! varints, the body, the sync marker. Each record of the body is its payload with the
//! single-object header cut off, then its topic (string), partition (int) and offset (long):
//! fields appended to the writer schema are appended bytes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use pyo3::intern;

use crate::avro::{long, string};

/// `container_file(header, sync, records, skip)`: `records` is an iterable of objects with
/// `value: bytes | None`, `topic: str`, `partition: int`, `offset: int` (a
/// `connectors.batch.Record`); `skip` the single-object header's length (10 bytes), cut
/// off each payload (a shorter or missing payload gives an empty body, as the reference's
/// slice does). Raises what attribute access and conversion raise (`AttributeError`,
/// `TypeError`, `OverflowError`).
#[pyfunction]
pub fn container_file<'py>(
    py: Python<'py>,
    header: &[u8],
    sync: &[u8],
    records: &Bound<'py, PyAny>,
    skip: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut body: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut count: i64 = 0;
    // the last record's topic: a batch is mostly of one topic, so its text is read once
    let mut last_topic: Option<(Bound<'py, PyAny>, String)> = None;
    for record in records.try_iter()? {
        let record = record?;
        let value = record.getattr(intern!(py, "value"))?;
        if !value.is_none() {
            let payload = value.cast::<PyBytes>()?.as_bytes();
            body.extend_from_slice(&payload[skip.min(payload.len())..]);
        }
        let topic = record.getattr(intern!(py, "topic"))?;
        let same = matches!(&last_topic, Some((t, _)) if t.is(&topic));
        if !same {
            let text = topic.cast::<PyString>()?.to_str()?.to_owned();
            last_topic = Some((topic, text));
        }
        string(&last_topic.as_ref().expect("set above").1, &mut body);
        let partition: i64 = record.getattr(intern!(py, "partition"))?.extract()?;
        long(partition, &mut body);
        let offset: i64 = record.getattr(intern!(py, "offset"))?.extract()?;
        long(offset, &mut body);
        count += 1;
    }
    let mut out: Vec<u8> = Vec::with_capacity(header.len() + body.len() + sync.len() + 20);
    out.extend_from_slice(header);
    long(count, &mut out);
    long(body.len() as i64, &mut out);
    out.extend_from_slice(&body);
    out.extend_from_slice(sync);
    Ok(PyBytes::new(py, &out))
}
