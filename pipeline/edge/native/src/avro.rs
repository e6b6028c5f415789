//! The `TrackingEventRecorded` v2 envelope as Avro single-object bytes, byte-identical to
//! `AvroCodec.encode(recorded_envelope(e, ...))` (`schemas/codec.py`, `schemas/compiled.py`).
//!
//! Layout (`schemas/avro/tracking/TrackingEventRecorded.v2.avsc`, Avro 1.11 "Binary
//! Encoding"): `C3 01`, the schema's 8-byte CRC-64-AVRO fingerprint (given by the caller,
//! from the Python registry), then the record's fields in schema order: strings as a
//! zig-zag varint byte length and the UTF-8 bytes, int/long as zig-zag varints, timestamps
//! as microseconds since the epoch, `["null", T]` unions as branch 0 or branch 1 + value,
//! booleans as one byte.

use crate::event::{self, Tracked};
use crate::json;

pub(crate) fn long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7f {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub(crate) fn string(s: &str, out: &mut Vec<u8>) {
    long(s.len() as i64, out);
    out.extend_from_slice(s.as_bytes());
}

fn optional(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(2);
            string(s, out);
        }
    }
}

/// A JSON text field (`_json_text`: orjson with `OPT_SORT_KEYS`), written in place: its
/// length prefix is only known once it is written, so the text goes to `scratch` first.
fn json_text<'v, I>(entries: I, len: usize, out: &mut Vec<u8>, scratch: &mut Vec<u8>)
where
    I: Iterator<Item = (&'v String, &'v serde_json::Value)>,
{
    scratch.clear();
    json::write_orjson_entries(entries, len, true, scratch);
    long(scratch.len() as i64, out);
    out.extend_from_slice(scratch);
}

fn object_text(v: &serde_json::Value, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let map = v.as_object().expect("properties and traits are objects");
    json_text(map.iter(), map.len(), out, scratch);
}

/// What the envelope takes besides the event.
pub struct Envelope<'a> {
    pub fingerprint: &'a [u8],
    pub producer: &'a str,
    pub system_id: &'a str,
    pub partner_id: &'a str,
    /// `"sdk:" + system_id` (`envelope.sdk_actor`)
    pub actor: &'a str,
}

/// Append the single-object bytes of `e`'s envelope (see the module docs).
pub fn encode_recorded(
    e: &Tracked<'_>,
    env: &Envelope<'_>,
    schema_valid: bool,
    structure_version: Option<i32>,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    out.extend_from_slice(b"\xc3\x01");
    out.extend_from_slice(env.fingerprint);
    let message_id: &str = &e.message_id;
    string(&event::event_id_for(env.system_id, message_id), out);
    string("TrackingEventRecorded", out);
    long(2, out); // schema_version
    string("system", out); // aggregate_type
    string(env.system_id, out); // aggregate_id
    long(0, out); // aggregate_version
    long(e.timestamp_us, out); // occurred_at
    string(env.producer, out);
    string(message_id, out); // correlation_id
    string(message_id, out); // causation_id
    string(env.actor, out);
    // data: TrackingEventRecordedDataV2
    string(env.partner_id, out);
    string(env.system_id, out);
    string(e.kind.as_str(), out);
    string(e.event, out);
    string(message_id, out);
    optional(e.user_id, out);
    optional(e.anonymous_id, out);
    optional(e.group_id, out);
    optional(e.previous_id, out);
    optional(e.category, out);
    long(e.timestamp_us, out);
    long(e.original_us, out);
    long(e.received_us, out);
    object_text(e.properties, out, scratch);
    object_text(e.traits, out, scratch);
    json_text(
        e.context.iter().map(|(k, v)| (*k, *v)),
        e.context.len(),
        out,
        scratch,
    );
    out.push(u8::from(schema_valid));
    match structure_version {
        None => out.push(0),
        Some(v) => {
            out.push(2);
            long(i64::from(v), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::long;

    #[test]
    fn zigzag() {
        for (n, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (64, vec![0x80, 1]),
        ] {
            let mut out = Vec::new();
            long(n, &mut out);
            assert_eq!(out, bytes);
        }
    }
}
