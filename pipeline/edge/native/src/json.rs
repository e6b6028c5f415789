//! JSON text in and out, with the exact semantics of the Python reference.
//!
//! In: a strict RFC 8259 parser producing `serde_json::Value` (objects keep insertion order,
//! a repeated key keeps its first position and takes its last value, as a Python dict does).
//! It refuses, with [`Unsupported`], everything the Python path would read differently or
//! not at all: `pipeline.domain.jsontext.loads` reads a body with orjson and, only when
//! orjson refuses it, again with the standard parser (NaN/Infinity, lone surrogates, a BOM,
//! integers beyond 64 bits, which orjson reads as doubles). The caller then hands the whole
//! request to the Python path.
//!
//! Out, three writers, each byte-identical to one Python encoder:
//! - [`orjson_len`] / [`write_orjson`]: `orjson.dumps(value)` (compact, insertion order,
//!   UTF-8 as is, floats as orjson 3.13 writes them: the `zmij` layout) and with
//!   `OPT_SORT_KEYS` (keys sorted at every level);
//! - [`write_canonical`]: `json.dumps(value, sort_keys=True, separators=(",", ":"),
//!   allow_nan=False)`, i.e. `ensure_ascii` escapes and Python's float `repr`.
//!
//! And [`py_eq`]: Python's `==` between two parsed values (`1 == 1.0 == True`).

use serde_json::{Map, Number, Value};

use crate::floats;

/// Nesting (arrays and objects) deeper than this is left to the Python path. orjson reads
/// 1024 levels and writes 254, the standard library's recursion limit is ~1000: below all
/// of them, so every value we accept is one each Python encoder writes the usual way.
pub const MAX_DEPTH: usize = 128;

/// Input outside what this module reproduces exactly (see the module docs): not an error
/// of the request, only a reason to let the Python path read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// Parse a whole document. `Err(Unsupported)` for any text orjson would not read as we do:
/// invalid UTF-8 (orjson refuses it; the standard parser then reads some of it), a BOM,
/// anything not strict JSON, NaN/Infinity, a lone surrogate escape, an integer outside
/// i64/u64, a float that overflows to infinity, nesting past [`MAX_DEPTH`].
pub fn parse(bytes: &[u8]) -> Result<Value, Unsupported> {
    // One pass of UTF-8 validation up front: the parser below then slices strings freely.
    let text = std::str::from_utf8(bytes).map_err(|_| Unsupported)?;
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
        members: Vec::with_capacity(64),
        items: Vec::with_capacity(64),
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(Unsupported);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
    /// Members and items of the objects and arrays being read, innermost last: each is
    /// built once at its final size (a map grown member by member rehashes two or three
    /// times for a typical event).
    members: Vec<(String, Value)>,
    items: Vec<Value>,
}

impl<'a> Parser<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, Unsupported> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(Unsupported)
        }
    }

    fn value(&mut self) -> Result<Value, Unsupported> {
        match self.peek().ok_or(Unsupported)? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => Ok(Value::String(self.string()?)),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Unsupported),
        }
    }

    fn enter(&mut self) -> Result<(), Unsupported> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    fn object(&mut self) -> Result<Value, Unsupported> {
        self.enter()?;
        let base = self.members.len();
        if self.peek() != Some(b'}') {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(Unsupported);
                }
                let key = self.string()?;
                self.ws();
                if self.peek() != Some(b':') {
                    return Err(Unsupported);
                }
                self.i += 1;
                self.ws();
                let v = self.value()?;
                self.members.push((key, v));
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                    }
                    Some(b'}') => break,
                    _ => return Err(Unsupported),
                }
            }
        }
        self.i += 1;
        self.depth -= 1;
        let mut map = Map::with_capacity(self.members.len() - base);
        for (key, v) in self.members.drain(base..) {
            // IndexMap semantics = dict semantics: a repeated key keeps its first place
            // and takes the last value.
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    }

    fn array(&mut self) -> Result<Value, Unsupported> {
        self.enter()?;
        let base = self.items.len();
        if self.peek() != Some(b']') {
            loop {
                let v = self.value()?;
                self.items.push(v);
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                    }
                    Some(b']') => break,
                    _ => return Err(Unsupported),
                }
            }
        }
        self.i += 1;
        self.depth -= 1;
        Ok(Value::Array(self.items.drain(base..).collect()))
    }

    fn hex4(&mut self) -> Result<u32, Unsupported> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(Unsupported)?;
        let mut n = 0u32;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Unsupported),
            };
            n = n * 16 + u32::from(v);
        }
        self.i += 4;
        Ok(n)
    }

    /// A string token at `self.i` (the opening quote). Raw control characters are refused
    /// (RFC 8259 7; orjson and `json.loads` refuse them too), as is a lone surrogate.
    fn string(&mut self) -> Result<String, Unsupported> {
        self.i += 1;
        let start = self.i;
        // fast path: no escape
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'"' => {
                    let out = self.text[start..self.i].to_owned();
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => break,
                0..=0x1f => return Err(Unsupported),
                _ => self.i += 1,
            }
        }
        let mut out = String::with_capacity(self.i - start + 8);
        out.push_str(&self.text[start..self.i]);
        loop {
            let c = self.peek().ok_or(Unsupported)?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek().ok_or(Unsupported)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(Unsupported);
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(Unsupported);
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(Unsupported);
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).ok_or(Unsupported)?);
                        }
                        _ => return Err(Unsupported),
                    }
                }
                0..=0x1f => return Err(Unsupported),
                _ => {
                    // copy a run of plain bytes (UTF-8 already validated)
                    let run = self.i;
                    while let Some(&c) = self.s.get(self.i) {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        self.i += 1;
                    }
                    out.push_str(&self.text[run..self.i]);
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, Unsupported> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Unsupported),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(Unsupported);
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Unsupported);
            }
            float = true;
        }
        let text = &self.text[start..self.i];
        if float {
            // std's parse is correctly rounded, as orjson's reader and Python's float() are
            let f: f64 = text.parse().map_err(|_| Unsupported)?;
            return Number::from_f64(f).map(Value::Number).ok_or(Unsupported);
        }
        // orjson reads integers past 64 bits as doubles, the standard parser exactly: neither
        // is what we would do, so the Python path reads them.
        if negative {
            text.parse::<i64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| Unsupported)
        } else {
            text.parse::<u64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| Unsupported)
        }
    }
}

// ---------------------------------------------------------------------------------------
// orjson's output

/// Bytes orjson adds to escape each byte of a string: `"` and `\\` one (a backslash),
/// `\b \t \n \f \r` one, other C0 controls five (`\u00XX`); everything else (DEL,
/// U+2028, non-ASCII) is written as the UTF-8 it is.
static ESCAPE_EXTRA: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 5;
        b += 1;
    }
    t[0x08] = 1;
    t[0x09] = 1;
    t[0x0a] = 1;
    t[0x0c] = 1;
    t[0x0d] = 1;
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t
};

/// Bytes of `"text"` as orjson writes it (see [`ESCAPE_EXTRA`]).
fn orjson_str_len(s: &str) -> usize {
    s.len()
        + 2
        + s.bytes()
            .map(|b| usize::from(ESCAPE_EXTRA[usize::from(b)]))
            .sum::<usize>()
}

/// `len(orjson.dumps(value))`, without writing it.
pub fn orjson_len(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => number_orjson_len(n),
        Value::String(s) => orjson_str_len(s),
        Value::Array(items) => {
            2 + items.iter().map(orjson_len).sum::<usize>() + items.len().saturating_sub(1)
        }
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| orjson_str_len(k) + 1 + orjson_len(v))
                .sum::<usize>()
                + map.len().saturating_sub(1)
        }
    }
}

fn number_orjson_len(n: &Number) -> usize {
    if let Some(u) = n.as_u64() {
        itoa_len_u(u)
    } else if let Some(i) = n.as_i64() {
        itoa_len_u(i.unsigned_abs()) + 1 // negative here: as_u64 took the rest
    } else {
        floats::orjson(n.as_f64().unwrap_or(0.0)).len()
    }
}

fn itoa_len_u(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 10 {
        u /= 10;
        n += 1;
    }
    n
}

/// Append `"s"` as orjson writes it (see [`orjson_str_len`]).
pub fn write_orjson_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    if bytes.iter().all(|&b| ESCAPE_EXTRA[usize::from(b)] == 0) {
        out.extend_from_slice(bytes); // nearly every string
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

fn write_number_orjson(n: &Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        out.extend_from_slice(floats::orjson(n.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// Append `orjson.dumps(value)`, or with `sort` `orjson.dumps(value,
/// option=OPT_SORT_KEYS)` (keys of every object, nested ones too, in code point order:
/// orjson compares the UTF-8 bytes, which orders as code points do).
pub fn write_orjson(v: &Value, sort: bool, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number_orjson(n, out),
        Value::String(s) => write_orjson_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_orjson(item, sort, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_orjson_entries(map.iter(), map.len(), sort, out),
    }
}

/// Append an object given as (key, value) entries in insertion order (a merged context
/// is not a `Map` of its own).
pub fn write_orjson_entries<'v, I>(entries: I, len: usize, sort: bool, out: &mut Vec<u8>)
where
    I: Iterator<Item = (&'v String, &'v Value)>,
{
    out.push(b'{');
    if sort {
        let mut sorted: Vec<(&String, &Value)> = Vec::with_capacity(len);
        sorted.extend(entries);
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0)); // keys are unique
        write_members(sorted.into_iter(), sort, out);
    } else {
        write_members(entries, sort, out);
    }
    out.push(b'}');
}

fn write_members<'v, I>(entries: I, sort: bool, out: &mut Vec<u8>)
where
    I: Iterator<Item = (&'v String, &'v Value)>,
{
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_orjson_str(k, out);
        out.push(b':');
        write_orjson(v, sort, out);
    }
}

// ---------------------------------------------------------------------------------------
// Python's json.dumps(sort_keys=True, separators=(",", ":"))

/// Append `s` as `json.dumps` writes a str with `ensure_ascii=True`: `"` `\` and
/// `\b \f \n \r \t` short, every other character outside printable ASCII (0x20-0x7e) as
/// lowercase `\uXXXX`, astral characters as a surrogate pair.
pub fn write_canonical_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(char::from(HEX[usize::from((*unit >> shift) & 0xf)]));
                    }
                }
            }
        }
    }
    out.push('"');
}

/// Append the canonical JSON of `v` (see the module docs).
pub fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else {
                out.push_str(&floats::python_repr(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => write_canonical_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_canonical_entries(map.iter(), out),
    }
}

/// Append a canonical JSON object of `entries` (any order; sorted here).
pub fn write_canonical_entries<'v, I>(entries: I, out: &mut String)
where
    I: Iterator<Item = (&'v String, &'v Value)>,
{
    let mut sorted: Vec<(&String, &Value)> = entries.collect();
    // Python sorts str keys by code point; UTF-8 byte order is the same order.
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_canonical_str(k, out);
        out.push(':');
        write_canonical(v, out);
    }
    out.push('}');
}

// ---------------------------------------------------------------------------------------
// Python equality

/// A JSON number or bool as Python compares it: bool is an int (True == 1), ints compare
/// with floats exactly (no rounding of the int to a double).
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num_of(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => Some(if let Some(u) = n.as_u64() {
            Num::Int(i128::from(u))
        } else if let Some(i) = n.as_i64() {
            Num::Int(i128::from(i))
        } else {
            Num::Float(n.as_f64().unwrap_or(0.0))
        }),
        _ => None,
    }
}

fn int_eq_float(i: i128, f: f64) -> bool {
    // exact: a float equal to an int is integral and within ±2^64 here
    f.fract() == 0.0 && f.abs() < 3.7e19 && (f as i128) == i
}

/// Python's `a == b` for two values parsed from JSON (dict equality ignores order).
pub fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (num_of(a), num_of(b)) {
        return match (x, y) {
            (Num::Int(i), Num::Int(j)) => i == j,
            (Num::Float(f), Num::Float(g)) => f == g,
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => int_eq_float(i, f),
        };
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert!(parse(b"{\"a\":1,\"a\":2}").unwrap()["a"] == 2);
        assert_eq!(parse(b"NaN"), Err(Unsupported));
        assert_eq!(parse(b"\"\\ud800\""), Err(Unsupported));
        assert_eq!(parse(b"18446744073709551616"), Err(Unsupported));
        assert_eq!(parse(b"1e400"), Err(Unsupported));
        assert_eq!(parse(b"\xef\xbb\xbf{}"), Err(Unsupported));
        assert_eq!(
            parse(b"\"\\ud83d\\ude00\"").unwrap(),
            Value::String("\u{1f600}".into())
        );
    }

    #[test]
    fn writers() {
        let v = parse("{\"b\":[1,2.5,\"\u{e9}\\u0001\"],\"a\":1e-7}".as_bytes()).unwrap();
        let mut out = Vec::new();
        write_orjson(&v, true, &mut out);
        assert_eq!(
            out,
            "{\"a\":1e-7,\"b\":[1,2.5,\"\u{e9}\\u0001\"]}".as_bytes()
        );
        assert_eq!(orjson_len(&v), out.len());
        let mut c = String::new();
        write_canonical(&v, &mut c);
        assert_eq!(c, "{\"a\":1e-07,\"b\":[1,2.5,\"\\u00e9\\u0001\"]}");
    }
}
