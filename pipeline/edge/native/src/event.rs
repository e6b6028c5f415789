//! One SDK event through the rules of `pipeline.domain.tracking.parse_sdk_event`, in the
//! same order, with the same rejection reasons and message texts. Every rule below names the
//! Python helper it mirrors; a change there needs the same change here (the property tests
//! in `tests/unit/edge/` compare both on every input they generate).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::json::{self, Unsupported};
use crate::times::{self, in_range, MAX_US, MIN_US, US_PER_DAY};

/// `tracking.MAX_TEXT_LENGTH`: event name, ids, page name and category, in code points.
pub const MAX_TEXT_LENGTH: usize = 200;
/// `tracking._MILLIS_THRESHOLD`: epoch numbers above it are milliseconds.
const MILLIS_THRESHOLD: i128 = 100_000_000_000;
/// `EARLIEST_CLIENT_TIME` (1900-01-01) and `LATEST_CLIENT_TIME` (2299-12-31
/// 23:59:59.999), microseconds since 1970.
const EARLIEST_CLIENT_US: i64 = -2_208_988_800_000_000;
const LATEST_CLIENT_US: i64 = 10_413_791_999_999_000;
/// `MAX_FUTURE_SKEW`: one day.
const MAX_FUTURE_SKEW_US: i64 = US_PER_DAY;

/// `tracking.CallType`, in its declaration order (the order of the "must be one of" text).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallType {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl CallType {
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Track => "track",
            CallType::Identify => "identify",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }

    /// `CallType(value)` for a str; None where Python raises ValueError.
    pub fn parse(text: &str) -> Option<CallType> {
        Some(match text {
            "track" => CallType::Track,
            "identify" => CallType::Identify,
            "page" => CallType::Page,
            "screen" => CallType::Screen,
            "group" => CallType::Group,
            "alias" => CallType::Alias,
            _ => return None,
        })
    }
}

/// `tracking.RejectReason` (values are API contract).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    Malformed,
    TooLarge,
    MissingId,
    TimestampOutOfRange,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::MissingId => "missing_id",
            Reason::TimestampOutOfRange => "timestamp_out_of_range",
        }
    }
}

/// `tracking.EventRejection`.
#[derive(Debug)]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

/// What can stop one event: its rejection (`_Malformed`), or input this crate does not
/// reproduce exactly (the whole request goes to the Python path).
pub enum Stop {
    Reject(Rejection),
    Unsupported,
}

impl From<Unsupported> for Stop {
    fn from(_: Unsupported) -> Self {
        Stop::Unsupported
    }
}

fn malformed(message: impl Into<String>) -> Stop {
    Stop::Reject(Rejection {
        reason: Reason::Malformed,
        message: message.into(),
    })
}

/// Python's own reading of a time this crate does not parse natively (see `lib.rs`):
/// `Ok(Some(us))` read, `Ok(None)` Python raised ValueError or OverflowError,
/// `Err(Unsupported)` anything else.
pub trait TimeReader {
    /// `datetime.fromisoformat(text)`, naive = UTC, `astimezone(UTC)`.
    fn iso(&mut self, text: &str) -> Result<Option<i64>, Unsupported>;
    /// `_EPOCH + timedelta(milliseconds=f)` if `f > 1e11`, else `timedelta(seconds=f)`.
    fn epoch_float(&mut self, f: f64) -> Result<Option<i64>, Unsupported>;
}

/// What covers every event of a request (`SdkRequest` plus `decode_events`' arguments).
pub struct Batch<'a> {
    pub system_id: &'a str,
    pub received_us: i64,
    pub max_event_bytes: usize,
    pub sent_at: Option<&'a Value>,
    pub context: &'a Map<String, Value>,
    pub call_type: Option<CallType>,
    /// `{}`: what an absent properties/traits reads as.
    pub empty: &'a Value,
}

/// `tracking.TrackedEvent`, borrowing from the parsed request. Times in microseconds since
/// 1970, UTC.
pub struct Tracked<'a> {
    pub message_id: Cow<'a, str>,
    pub kind: CallType,
    pub event: &'a str,
    pub user_id: Option<&'a str>,
    pub anonymous_id: Option<&'a str>,
    pub group_id: Option<&'a str>,
    pub previous_id: Option<&'a str>,
    pub category: Option<&'a str>,
    pub timestamp_us: i64,
    pub original_us: i64,
    pub received_us: i64,
    /// an object (`{}` when absent)
    pub properties: &'a Value,
    pub traits: &'a Value,
    /// `{**batch_context, **own_context}`: (key, value) in that dict's order
    pub context: Vec<(&'a String, &'a Value)>,
}

/// `str.isspace()` (Python 3.11, Unicode 14): Rust's `char::is_whitespace` plus the four
/// C0 separators U+001C..U+001F, which Python counts as whitespace too.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// The members the rules read, by name. The event's object is walked once into
/// [`Fields`] (one string match per member) instead of hashing each name per lookup.
#[derive(Clone, Copy)]
enum Key {
    Type,
    Event,
    Name,
    UserId,
    UserIdCamel,
    AnonymousId,
    AnonymousIdCamel,
    MessageId,
    MessageIdCamel,
    GroupId,
    GroupIdCamel,
    PreviousId,
    PreviousIdCamel,
    SentAt,
    SentAtCamel,
    Timestamp,
    Category,
    Context,
    Properties,
    Traits,
}

const KEYS: usize = Key::Traits as usize + 1;

/// One of our snake_case fields and Segment's camelCase spelling of it (`_CAMEL`).
struct Spelling {
    snake: Key,
    camel: Key,
    name: &'static str,
    camel_name: &'static str,
}

const USER_ID: Spelling = Spelling {
    snake: Key::UserId,
    camel: Key::UserIdCamel,
    name: "user_id",
    camel_name: "userId",
};
const ANONYMOUS_ID: Spelling = Spelling {
    snake: Key::AnonymousId,
    camel: Key::AnonymousIdCamel,
    name: "anonymous_id",
    camel_name: "anonymousId",
};
const MESSAGE_ID: Spelling = Spelling {
    snake: Key::MessageId,
    camel: Key::MessageIdCamel,
    name: "message_id",
    camel_name: "messageId",
};
const GROUP_ID: Spelling = Spelling {
    snake: Key::GroupId,
    camel: Key::GroupIdCamel,
    name: "group_id",
    camel_name: "groupId",
};
const PREVIOUS_ID: Spelling = Spelling {
    snake: Key::PreviousId,
    camel: Key::PreviousIdCamel,
    name: "previous_id",
    camel_name: "previousId",
};
const SENT_AT: Spelling = Spelling {
    snake: Key::SentAt,
    camel: Key::SentAtCamel,
    name: "sent_at",
    camel_name: "sentAt",
};

/// An event object's members that the rules read (a repeated key was resolved by the
/// parser: the last value, as a dict keeps it).
struct Fields<'a> {
    slots: [Option<&'a Value>; KEYS],
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn of(map: &'a Map<String, Value>) -> Self {
        let mut slots = [None; KEYS];
        for (k, v) in map {
            let key = match k.as_str() {
                "type" => Key::Type,
                "event" => Key::Event,
                "name" => Key::Name,
                "user_id" => Key::UserId,
                "userId" => Key::UserIdCamel,
                "anonymous_id" => Key::AnonymousId,
                "anonymousId" => Key::AnonymousIdCamel,
                "message_id" => Key::MessageId,
                "messageId" => Key::MessageIdCamel,
                "group_id" => Key::GroupId,
                "groupId" => Key::GroupIdCamel,
                "previous_id" => Key::PreviousId,
                "previousId" => Key::PreviousIdCamel,
                "sent_at" => Key::SentAt,
                "sentAt" => Key::SentAtCamel,
                "timestamp" => Key::Timestamp,
                "category" => Key::Category,
                "context" => Key::Context,
                "properties" => Key::Properties,
                "traits" => Key::Traits,
                _ => continue,
            };
            slots[key as usize] = Some(v);
        }
        Fields { slots, map }
    }

    /// `raw.get(name)` with JSON null read as absent (every caller tests `is None`).
    fn get(&self, key: Key) -> Option<&'a Value> {
        self.slots[key as usize].filter(|v| !v.is_null())
    }

    /// `raw.get(name)` as is.
    fn raw(&self, key: Key) -> Option<&'a Value> {
        self.slots[key as usize]
    }
}

/// `_field`: `raw[name]` or its camelCase spelling; both given and different is MALFORMED.
fn field<'a>(raw: &Fields<'a>, f: &Spelling) -> Result<Option<&'a Value>, Stop> {
    match (raw.get(f.snake), raw.get(f.camel)) {
        (None, c) => Ok(c),
        (Some(v), Some(c)) if !json::py_eq(c, v) => {
            Err(malformed(format!("{} and {} differ", f.name, f.camel_name)))
        }
        (v, _) => Ok(v),
    }
}

/// `_text`: None for absent, null or blank; else a string of at most 200 characters.
fn text<'a>(value: Option<&'a Value>, name: &str) -> Result<Option<&'a str>, Stop> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) if py_strip(s).is_empty() => Ok(None),
        Some(Value::String(s)) if char_len(s) <= MAX_TEXT_LENGTH => Ok(Some(s)),
        Some(_) => Err(malformed(format!(
            "{name} must be a string of 1-200 characters"
        ))),
    }
}

/// `_identity`: (usable id, whether a value was given but is not a usable id).
fn identity(value: Option<&Value>) -> (Option<&str>, bool) {
    match text(value, "") {
        Ok(id) => (id, false),
        Err(_) => (None, true),
    }
}

fn identities<'a>(raw: &Fields<'a>) -> Result<(Option<&'a str>, Option<&'a str>), Stop> {
    let (user_id, bad_user) = identity(field(raw, &USER_ID)?);
    let (anonymous_id, bad_anonymous) = identity(field(raw, &ANONYMOUS_ID)?);
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Stop::Reject(Rejection {
            reason: Reason::MissingId,
            message: "user_id or anonymous_id (a string of 1-200 characters) is required".into(),
        }));
    }
    if bad_user || bad_anonymous {
        let name = if bad_user { "user_id" } else { "anonymous_id" };
        return Err(malformed(format!(
            "{name} must be a string of 1-200 characters"
        )));
    }
    Ok((user_id, anonymous_id))
}

/// `_type_of`.
fn type_of(raw: &Fields<'_>, route: Option<CallType>) -> Result<CallType, Stop> {
    let Some(given) = raw.get(Key::Type) else {
        return Ok(route.unwrap_or(CallType::Track));
    };
    let Some(kind) = given.as_str().and_then(CallType::parse) else {
        return Err(malformed(
            "type must be one of track, identify, page, screen, group, alias",
        ));
    };
    match route {
        Some(route) if route != kind => Err(malformed(format!(
            "a {} call sent to the {} route",
            kind.as_str(),
            route.as_str()
        ))),
        _ => Ok(kind),
    }
}

/// `_event_name`.
fn event_name<'a>(raw: &Fields<'a>, kind: CallType) -> Result<&'a str, Stop> {
    match kind {
        CallType::Track => match raw.raw(Key::Event) {
            Some(Value::String(name)) => {
                let stripped = py_strip(name);
                if stripped.is_empty() || char_len(stripped) > MAX_TEXT_LENGTH {
                    return Err(malformed("event must be a string of 1-200 characters"));
                }
                Ok(stripped)
            }
            _ => Err(malformed("event must be a string of 1-200 characters")),
        },
        CallType::Page | CallType::Screen => {
            Ok(text(raw.get(Key::Name), "name")?.map_or(kind.as_str(), py_strip))
        }
        _ => Ok(kind.as_str()),
    }
}

fn require(value: Option<&str>, name: &str, kind: CallType) -> Result<(), Stop> {
    if value.is_none() {
        let kind = kind.as_str();
        return Err(malformed(format!(
            "a {kind} call needs {name} (a string of 1-200 characters)"
        )));
    }
    Ok(())
}

/// Why `_instant` failed: MALFORMED with one of two texts (its `_reject`s).
enum InstantError {
    Unreadable,
    WrongType,
}

/// `_instant` for a non-null value: microseconds since 1970, UTC.
fn instant(raw: &Value, reader: &mut dyn TimeReader) -> Result<Result<i64, InstantError>, Stop> {
    let parsed = match raw {
        Value::String(s) => match times::parse_iso_common(s) {
            Some(us) => Some(us),
            None => reader.iso(s)?,
        },
        Value::Number(n) => {
            let int = n
                .as_u64()
                .map(i128::from)
                .or_else(|| n.as_i64().map(i128::from));
            match int {
                Some(i) => epoch_int(i),
                None => {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    if f.fract() == 0.0 && f.abs() < 9.2e18 {
                        // integral: timedelta is exact for it as for the int (it converts
                        // the integral part exactly), and `f > 1e11` compares alike
                        epoch_int(f as i128)
                    } else if f.fract() == 0.0 {
                        None // |f| >= 2^63 seconds: OverflowError whatever the unit
                    } else {
                        reader.epoch_float(f)? // timedelta rounds fractions: let it
                    }
                }
            }
        }
        _ => return Ok(Err(InstantError::WrongType)),
    };
    Ok(parsed.ok_or(InstantError::Unreadable))
}

/// `_EPOCH + timedelta(milliseconds=n)` (n > 1e11) or `timedelta(seconds=n)`, exact; None
/// where Python raises OverflowError (outside `timedelta` or `datetime`).
fn epoch_int(n: i128) -> Option<i64> {
    let us = if n > MILLIS_THRESHOLD {
        n * 1000
    } else {
        n * 1_000_000
    };
    let us = i64::try_from(us).ok()?;
    in_range(us).then_some(us)
}

fn unreadable(e: InstantError) -> Stop {
    match e {
        InstantError::Unreadable => {
            malformed("timestamp is not a readable ISO-8601 time or epoch number in range")
        }
        InstantError::WrongType => {
            malformed("timestamp must be an ISO-8601 string or epoch number")
        }
    }
}

/// `_times`: (timestamp, original_timestamp), skew-corrected by sentAt (Segment spec,
/// "Timestamps": receivedAt - (sentAt - originalTimestamp)).
fn times_of(
    raw: &Fields<'_>,
    batch: &Batch<'_>,
    reader: &mut dyn TimeReader,
) -> Result<(i64, i64), Stop> {
    let client = match raw.get(Key::Timestamp) {
        None => return Ok((batch.received_us, batch.received_us)),
        Some(v) => instant(v, reader)?.map_err(unreadable)?,
    };
    // sentAt only serves the correction: unreadable (or both spellings, different) = none
    let sent = match field(raw, &SENT_AT) {
        Err(Stop::Unsupported) => return Err(Stop::Unsupported),
        Err(Stop::Reject(_)) => None,
        Ok(own) => match own.or(batch.sent_at.filter(|v| !v.is_null())) {
            None => None,
            Some(v) => instant(v, reader)?.ok(),
        },
    };
    let Some(sent) = sent else {
        return Ok((client, client));
    };
    let corrected = batch.received_us - (sent - client);
    if !in_range(corrected) {
        return Err(malformed(
            "timestamp and sentAt are too far apart to correct the clock skew",
        ));
    }
    Ok((corrected, client))
}

/// `time_range_problem`.
pub fn time_range_problem(timestamp: i64, original: i64, received: i64) -> Option<String> {
    let latest = received + MAX_FUTURE_SKEW_US;
    if !(0..=latest).contains(&timestamp) {
        return Some(format!(
            "timestamp {} is outside the accepted range {} to {} (received time + 1 day)",
            times::iso_ms_z(timestamp),
            times::iso_ms_z(0),
            times::iso_ms_z(latest)
        ));
    }
    if !(EARLIEST_CLIENT_US..=LATEST_CLIENT_US).contains(&original) {
        return Some(format!(
            "the client's timestamp {} is outside the accepted range {} to {}",
            times::iso_ms_z(original),
            times::iso_ms_z(EARLIEST_CLIENT_US),
            times::iso_ms_z(LATEST_CLIENT_US)
        ));
    }
    None
}

/// Whether `received_us` is one the reference can compute with (`received_at + 1 day`
/// must be a datetime).
pub fn received_ok(received_us: i64) -> bool {
    (MIN_US..=MAX_US - MAX_FUTURE_SKEW_US).contains(&received_us)
}

/// `_object`: None/absent = `{}`, else it must be an object.
fn object<'a>(raw: &Fields<'a>, key: Key, name: &str) -> Result<Option<&'a Value>, Stop> {
    match raw.get(key) {
        None => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(malformed(format!("{name} must be an object"))),
    }
}

/// `tracking.MESSAGE_NAMESPACE` and `TRACKING_EVENT_NAMESPACE` (fixed forever).
const MESSAGE_NAMESPACE: [u8; 16] = [
    0x2d, 0x0c, 0x8f, 0x5e, 0x4b, 0x7a, 0x5c, 0x19, 0x9e, 0x3d, 0x8a, 0x6f, 0x1b, 0x2c, 0x4d, 0x5e,
];
const TRACKING_EVENT_NAMESPACE: [u8; 16] = [
    0x9a, 0x1e, 0x7c, 0x3b, 0x5d, 0x2f, 0x5e, 0x84, 0xb6, 0xa0, 0x7f, 0x4c, 0x3e, 0x2d, 0x1b, 0x0a,
];

/// `uuids.uuid5_text`: RFC 9562 5.5 (SHA-1 of namespace and UTF-8 name, version 5,
/// variant 10xx), lowercase 8-4-4-4-12.
fn uuid5_text(namespace: &[u8; 16], parts: &[&str]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(namespace);
    for part in parts {
        sha.update(part.as_bytes());
    }
    let digest = sha.digest().bytes();
    let mut o = [0u8; 16];
    o.copy_from_slice(&digest[..16]);
    o[6] = (o[6] & 0x0f) | 0x50;
    o[8] = (o[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in o.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// `tracking.event_id_for`: uuid5(TRACKING_EVENT_NAMESPACE, "{system_id}/{message_id}").
pub fn event_id_for(system_id: &str, message_id: &str) -> String {
    uuid5_text(&TRACKING_EVENT_NAMESPACE, &[system_id, "/", message_id])
}

/// `_NOT_CONTENT`: not part of a derived message id.
fn not_content(key: &str) -> bool {
    matches!(
        key,
        "message_id" | "messageId" | "sent_at" | "sentAt" | "writeKey"
    )
}

/// `_message_id`.
fn message_id<'a>(raw: &Fields<'a>, system_id: &str) -> Result<Cow<'a, str>, Stop> {
    match field(raw, &MESSAGE_ID)? {
        None => {
            let mut canonical = String::with_capacity(256);
            json::write_canonical_entries(
                raw.map.iter().filter(|(k, _)| !not_content(k)),
                &mut canonical,
            );
            Ok(Cow::Owned(uuid5_text(
                &MESSAGE_NAMESPACE,
                &[system_id, "\n", &canonical],
            )))
        }
        Some(Value::String(s)) if (1..=MAX_TEXT_LENGTH).contains(&char_len(s)) => {
            Ok(Cow::Borrowed(s))
        }
        Some(_) => Err(malformed("message_id must be a string of 1-200 characters")),
    }
}

/// `decode_events` + `parse_sdk_event` for one raw event.
pub fn parse_event<'a>(
    raw: &'a Value,
    batch: &Batch<'a>,
    reader: &mut dyn TimeReader,
) -> Result<Tracked<'a>, Stop> {
    let Value::Object(map) = raw else {
        return Err(malformed("an event must be a JSON object"));
    };
    let size = json::orjson_len(raw);
    if size > batch.max_event_bytes {
        return Err(Stop::Reject(Rejection {
            reason: Reason::TooLarge,
            message: format!(
                "event is {size} bytes, more than the {}-byte limit",
                batch.max_event_bytes
            ),
        }));
    }
    let obj = &Fields::of(map);
    let kind = type_of(obj, batch.call_type)?;
    let event = event_name(obj, kind)?;
    let (user_id, anonymous_id) = identities(obj)?;
    let group_id = text(field(obj, &GROUP_ID)?, "group_id")?;
    let previous_id = text(field(obj, &PREVIOUS_ID)?, "previous_id")?;
    if kind == CallType::Group {
        require(group_id, "group_id", kind)?;
    }
    if kind == CallType::Alias {
        require(previous_id, "previous_id", kind)?;
    }
    let message_id = message_id(obj, batch.system_id)?;
    let (timestamp_us, original_us) = times_of(obj, batch, reader)?;
    if let Some(problem) = time_range_problem(timestamp_us, original_us, batch.received_us) {
        return Err(Stop::Reject(Rejection {
            reason: Reason::TimestampOutOfRange,
            message: problem,
        }));
    }
    let own_context = object(obj, Key::Context, "context")?;
    // keyword arguments of TrackedEvent(...) are evaluated in this order
    let category = text(obj.get(Key::Category), "category")?;
    let properties = object(obj, Key::Properties, "properties")?.unwrap_or(batch.empty);
    let traits = object(obj, Key::Traits, "traits")?.unwrap_or(batch.empty);
    let own = own_context.and_then(Value::as_object);
    let context = merge(batch.context, own);
    Ok(Tracked {
        message_id,
        kind,
        event,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        category,
        timestamp_us,
        original_us,
        received_us: batch.received_us,
        properties,
        traits,
        context,
    })
}

/// `{**context, **own_context}`: the batch's keys in its order (taking the event's value
/// where it has one), then the event's other keys in its order.
fn merge<'a>(
    batch: &'a Map<String, Value>,
    own: Option<&'a Map<String, Value>>,
) -> Vec<(&'a String, &'a Value)> {
    let mut out: Vec<(&String, &Value)> = Vec::with_capacity(batch.len() + own.map_or(0, Map::len));
    match own {
        None => out.extend(batch.iter()),
        Some(own) if batch.is_empty() => out.extend(own.iter()),
        Some(own) => {
            out.extend(batch.iter().map(|(k, v)| (k, own.get(k).unwrap_or(v))));
            out.extend(own.iter().filter(|(k, _)| !batch.contains_key(*k)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid5_matches_python() {
        // str(uuid.uuid5(uuid.UUID("9a1e7c3b-5d2f-5e84-b6a0-7f4c3e2d1b0a"), "s/m"))
        let id = event_id_for("s", "m");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5");
    }

    #[test]
    fn latest_client_time() {
        let days = times::days_from_civil(2299, 12, 31);
        assert_eq!(LATEST_CLIENT_US, days * US_PER_DAY + 86_399_999_000);
        assert_eq!(
            EARLIEST_CLIENT_US,
            times::days_from_civil(1900, 1, 1) * US_PER_DAY
        );
    }
}
