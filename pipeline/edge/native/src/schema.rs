//! A structure's JSON Schema, compiled with the `jsonschema` crate, for exactly the schemas
//! whose verdicts match Python's `jsonschema` (`validator_for(schema)(schema).is_valid(x)`,
//! formats not asserted), the reference of `pipeline.recording`.
//!
//! Two libraries agree on the core vocabulary; where they may not, [`compile`] refuses with
//! [`Refused`] and the caller validates that system's events in Python:
//! - `pattern` / `patternProperties`: Python's `re` and the crate's ECMA-262 translation
//!   differ (`$` before a final newline, `\d`/`\w` on non-ASCII, syntax);
//! - `format`: annotation-only in both as configured, but left out while that is unproven;
//! - `multipleOf`: float arithmetic differs (Python divides, the crate may not);
//! - `"type": "integer"` under draft 4, where Python takes no float for an integer and the
//!   crate takes a huge integral one (1e308);
//! - `$id`/`id`, `$anchor`, `$dynamicRef`, `$recursiveRef`, `$vocabulary`, a `$schema`
//!   below the root, `content*`, remote or recursive `$ref`s (resolution differs or
//!   recursion), and any keyword not listed for the schema's draft (what one library
//!   ignores the other may apply);
//! - a `$schema` other than drafts 4, 6, 7, 2019-09, 2020-12 (Python also has draft 3;
//!   an unknown one is Python's latest draft with a warning, or an error in future);
//! - a schema the crate finds invalid against its meta-schema (Python does not check it,
//!   and may raise while validating).

use jsonschema::Draft;
use serde_json::Value;

/// Why a schema is left to Python: a short text for the `Fallback` exception.
#[derive(Debug)]
pub struct Refused(pub String);

fn refused(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

/// The draft `validator_for` picks: by `$schema`, whose URI Python normalizes with
/// `urlsplit(uri).geturl()` (an empty fragment `#` dropped, the scheme lowercased); none
/// at all means the latest, 2020-12.
fn draft_of(schema: &Value) -> Result<Draft, Refused> {
    let Some(uri) = schema.as_object().and_then(|o| o.get("$schema")) else {
        return Ok(Draft::Draft202012);
    };
    let uri = uri
        .as_str()
        .ok_or_else(|| refused("$schema is not a string"))?;
    let uri = uri.strip_suffix('#').unwrap_or(uri);
    Ok(match uri {
        "http://json-schema.org/draft-04/schema" => Draft::Draft4,
        "http://json-schema.org/draft-06/schema" => Draft::Draft6,
        "http://json-schema.org/draft-07/schema" => Draft::Draft7,
        "https://json-schema.org/draft/2019-09/schema" => Draft::Draft201909,
        "https://json-schema.org/draft/2020-12/schema" => Draft::Draft202012,
        other => {
            return Err(refused(format!(
                "$schema {other:?} is not one compiled here"
            )))
        }
    })
}

/// How a keyword's value is read.
enum Kind {
    /// data or an annotation: not walked
    Data,
    /// one subschema
    Schema,
    /// an array of subschemas
    Schemas,
    /// a schema or an array of schemas (`items` before 2020-12)
    SchemaOrSchemas,
    /// name -> subschema
    SchemaMap,
    /// name -> subschema or array of names (`dependencies`)
    Dependencies,
    /// a local reference
    Ref,
}

fn kind_of(keyword: &str, draft: Draft) -> Option<Kind> {
    let d4 = matches!(draft, Draft::Draft4);
    let upto7 = matches!(draft, Draft::Draft4 | Draft::Draft6 | Draft::Draft7);
    let from7 = !matches!(draft, Draft::Draft4 | Draft::Draft6);
    let from2019 = !upto7;
    let is2020 = matches!(draft, Draft::Draft202012);
    Some(match keyword {
        "type" | "enum" | "required" | "minimum" | "maximum" | "exclusiveMinimum"
        | "exclusiveMaximum" | "minLength" | "maxLength" | "minItems" | "maxItems"
        | "uniqueItems" | "minProperties" | "maxProperties" | "title" | "description"
        | "default" => Kind::Data,
        "const" | "examples" if !d4 => Kind::Data,
        "$comment" | "readOnly" | "writeOnly" if from7 => Kind::Data,
        "deprecated" | "dependentRequired" | "minContains" | "maxContains" if from2019 => {
            Kind::Data
        }
        "not" | "additionalProperties" => Kind::Schema,
        "contains" | "propertyNames" if !d4 => Kind::Schema,
        "if" | "then" | "else" if from7 => Kind::Schema,
        "unevaluatedProperties" | "unevaluatedItems" if from2019 => Kind::Schema,
        "allOf" | "anyOf" | "oneOf" => Kind::Schemas,
        "items" if is2020 => Kind::Schema,
        "items" => Kind::SchemaOrSchemas,
        "additionalItems" if !is2020 => Kind::Schema,
        "prefixItems" if is2020 => Kind::Schemas,
        "properties" | "definitions" => Kind::SchemaMap,
        "$defs" | "dependentSchemas" if from2019 => Kind::SchemaMap,
        "dependencies" if upto7 => Kind::Dependencies,
        "$ref" => Kind::Ref,
        _ => return None,
    })
}

/// Every keyword of every subschema of `schema` is one listed in [`kind_of`] for `draft`,
/// and every `$ref` is local and points at a subschema without `$ref`s of its own (no
/// chains, no recursion).
fn check(schema: &Value, root: &Value, draft: Draft, at_root: bool) -> Result<(), Refused> {
    let object = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(refused("a subschema is neither an object nor a boolean")),
    };
    for (keyword, value) in object {
        if keyword == "$schema" {
            if at_root {
                continue;
            }
            return Err(refused("$schema below the root"));
        }
        let kind = kind_of(keyword, draft)
            .ok_or_else(|| refused(format!("keyword {keyword:?} is left to Python")))?;
        if keyword == "type" && matches!(draft, Draft::Draft4) && mentions_integer(value) {
            return Err(refused("draft 4 integer type (floats differ)"));
        }
        match kind {
            Kind::Data => {}
            Kind::Schema => check(value, root, draft, false)?,
            Kind::Schemas => {
                let items = value
                    .as_array()
                    .ok_or_else(|| refused(format!("{keyword}: not an array")))?;
                for item in items {
                    check(item, root, draft, false)?;
                }
            }
            Kind::SchemaOrSchemas => match value {
                Value::Array(items) => {
                    for item in items {
                        check(item, root, draft, false)?;
                    }
                }
                other => check(other, root, draft, false)?,
            },
            Kind::SchemaMap | Kind::Dependencies => {
                let map = value
                    .as_object()
                    .ok_or_else(|| refused(format!("{keyword}: not an object")))?;
                for sub in map.values() {
                    match (&kind, sub) {
                        (Kind::Dependencies, Value::Array(names))
                            if names.iter().all(Value::is_string) => {}
                        _ => check(sub, root, draft, false)?,
                    }
                }
            }
            Kind::Ref => {
                let target = value
                    .as_str()
                    .and_then(|r| r.strip_prefix('#'))
                    .ok_or_else(|| refused("$ref is not local (#...)"))?;
                let pointed = if target.is_empty() {
                    Some(root)
                } else {
                    pointer(root, target)
                };
                let pointed = pointed.ok_or_else(|| refused("$ref points nowhere"))?;
                if contains_ref(pointed) {
                    return Err(refused(
                        "$ref to a schema with $refs (a chain or recursion)",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// RFC 6901 pointer (`/a/b`), with `~0`/`~1` unescaped; percent-encoding refused (a URI
/// fragment may carry it, and the two libraries may decode it differently).
fn pointer<'v>(root: &'v Value, target: &str) -> Option<&'v Value> {
    if target.contains('%') {
        return None;
    }
    root.pointer(target)
}

fn mentions_integer(types: &Value) -> bool {
    match types {
        Value::String(t) => t == "integer",
        Value::Array(ts) => ts.iter().any(|t| t == "integer"),
        _ => false,
    }
}

fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key("$ref") || o.values().any(contains_ref),
        Value::Array(items) => items.iter().any(contains_ref),
        _ => false,
    }
}

/// A compiled structure schema, or why it is left to Python.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, Refused> {
    let draft = draft_of(schema)?;
    check(schema, schema, draft, true)?;
    jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(false)
        .build(schema)
        .map_err(|e| refused(format!("not compiled: {e}")))
}
