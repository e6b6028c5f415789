"""``streamfold_edge.Validator`` (the Rust ``jsonschema`` crate) against Python's
``jsonschema`` (``validator_for(schema)(schema).is_valid``, formats not asserted): the same
verdict for every schema it compiles, and ``Fallback`` for the schemas whose semantics may
differ between the two libraries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamfold_edge import Fallback, Validator  # a missing build fails this module

# Every import of project code, in one block (modules move: repoint here).
from tests.unit.edge.reference import python_validator

D4 = "http://json-schema.org/draft-04/schema#"
D6 = "http://json-schema.org/draft-06/schema#"
D7 = "http://json-schema.org/draft-07/schema#"
D2019 = "https://json-schema.org/draft/2019-09/schema"
D2020 = "https://json-schema.org/draft/2020-12/schema"
DRAFTS = [None, D4, D6, D7, D2019, D2020]

INSTANCES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    -0.0,
    2**53,
    2**53 + 1,
    float(2**53),
    2**63 - 1,
    2**64 - 1,
    -(2**63),
    1e308,
    5e-324,
    "",
    "a",
    "é",
    "😀",
    "abc",
    "a" * 10,
    "😀" * 3,
    "\n",
    [],
    [1],
    [1, 1],
    [1, 1.0],
    [True, 1],
    [0, False],
    [[1], [1.0]],
    [{"a": 1}, {"a": 1.0}],
    [1, "1"],
    ["a", "b", "c"],
    {},
    {"a": 1},
    {"a": None},
    {"a": "x", "b": 2},
    {"path": "/", "url": "u"},
    {"path": "", "url": "u"},
    {"total": 9.5, "currency": "EUR"},
    {"total": -1},
    {"total": True},
    {"a": {"b": {"c": []}}},
    {"x": 1, "y": 2, "z": 3},
]

SCHEMAS: list[Any] = [
    True,
    False,
    {},
    {"type": "integer"},
    {"type": "number"},
    {"type": ["string", "null"]},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2},
    {"type": "array", "uniqueItems": True},
    {"type": "string", "minLength": 1, "maxLength": 3},
    {"type": "object", "required": ["a"], "properties": {"a": {"type": ["integer", "null"]}}},
    {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "object", "minProperties": 1, "maxProperties": 2},
    {"enum": [1, "a", None, [1], {"a": 1}]},
    {"enum": [True]},
    {"enum": [1.0]},
    {"enum": [0]},
    {"const": 1},
    {"const": False},
    {"const": [1, {"a": 1}]},
    {"minimum": 0, "maximum": 2**53},
    {"exclusiveMinimum": 0, "exclusiveMaximum": 1.5},
    {"maximum": 2**63 - 1},
    {"minimum": 1e308},
    {"allOf": [{"type": "number"}, {"minimum": 1}]},
    {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    {"oneOf": [{"type": "number"}, {"type": "integer"}]},
    {"not": {"type": "object"}},
    {"if": {"type": "integer"}, "then": {"minimum": 1}, "else": {"type": "string"}},
    {"type": "array", "contains": {"type": "integer"}},
    {"type": "array", "contains": {"const": 1}, "minContains": 2, "maxContains": 2},
    {"type": "object", "propertyNames": {"maxLength": 1}},
    {"type": "object", "dependentRequired": {"a": ["b"]}},
    {"type": "object", "dependentSchemas": {"a": {"required": ["b"]}}},
    {"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/pos"}},
        "$defs": {"pos": {"minimum": 0}},
    },
    {"properties": {"a": {"$ref": "#/definitions/s"}}, "definitions": {"s": {"type": "string"}}},
    {
        "type": "object",
        "unevaluatedProperties": False,
        "properties": {"a": {}},
        "allOf": [{"properties": {"b": {}}}],
    },
    {
        "title": "t",
        "description": "d",
        "default": 1,
        "examples": [1],
        "$comment": "c",
        "deprecated": True,
        "readOnly": True,
        "writeOnly": False,
    },
    {
        "type": "object",
        "properties": {
            "total": {"type": "number", "minimum": 0},
            "currency": {"enum": ["EUR", "USD"]},
        },
        "required": ["total"],
    },
]

# per draft: the draft-specific forms of the keywords above
DRAFT_SCHEMAS: list[tuple[str, Any]] = [
    (D4, {"type": ["number", "string"]}),
    (D4, {"minimum": 0, "exclusiveMinimum": True, "maximum": 2, "exclusiveMaximum": True}),
    (D4, {"items": [{"type": "number"}], "additionalItems": False}),
    (D4, {"dependencies": {"a": ["b"], "c": {"required": ["d"]}}}),
    (
        D4,
        {
            "properties": {"a": {"$ref": "#/definitions/x", "type": "string"}},
            "definitions": {"x": {"type": "number"}},
        },
    ),
    (D6, {"type": "integer"}),
    (D6, {"const": 1.0, "contains": {"type": "null"}}),
    (D7, {"if": {"const": 1}, "then": {"type": "integer"}, "else": False}),
    (D7, {"items": [{"type": "integer"}], "additionalItems": {"type": "string"}}),
    (
        D7,
        {
            "properties": {"a": {"$ref": "#/definitions/x", "type": "string"}},
            "definitions": {"x": {"type": "integer"}},
        },
    ),
    (D2019, {"items": [{"type": "integer"}], "additionalItems": False, "unevaluatedItems": False}),
    (
        D2019,
        {
            "properties": {"a": {"$ref": "#/$defs/x", "type": "string"}},
            "$defs": {"x": {"type": "integer"}},
        },
    ),
    (D2020, {"prefixItems": [{"type": "integer"}], "unevaluatedItems": False}),
]

# whose semantics may differ between the two libraries: left to Python
LEFT_TO_PYTHON: list[Any] = [
    {"type": "string", "pattern": "^a$"},
    {"patternProperties": {"^x": {"type": "integer"}}},
    {"type": "string", "format": "email"},
    {"multipleOf": 0.1},
    {"$id": "https://example.com/s", "type": "object"},
    {"$anchor": "a"},
    {"$dynamicRef": "#meta"},
    {"$ref": "https://example.com/other.json"},
    {"$ref": "#"},
    {"properties": {"a": {"$ref": "#/properties/b"}, "b": {"$ref": "#/properties/a"}}},
    {"$schema": "http://json-schema.org/draft-03/schema#", "type": "integer"},
    {"$schema": "https://example.com/my-dialect"},
    {"type": "string", "contentMediaType": "application/json"},
    {"x-custom": 1},
    {"type": "not-a-type"},
    {"minimum": "zero"},
    {"properties": {"a": {"$schema": D7}}},
    {"type": "integer", "maximum": 2**64},
    {"const": float("nan")},
    {"$schema": D4, "type": "integer"},  # Python takes no float for it, the crate takes 1e308
    {"$schema": D4, "properties": {"a": {"type": ["integer", "null"]}}},
]


def verdicts(schema: Any, instances: list[Any]) -> tuple[list[bool], list[bool]] | None:
    """(compiled, Python) verdicts, or None when the compiled path leaves it to Python."""
    text = json.dumps(schema)
    try:
        compiled = Validator(text)
    except Fallback:
        return None
    python = python_validator(text)
    return [compiled.is_valid_json(json.dumps(i)) for i in instances], [
        python(i) for i in instances
    ]


CORPUS = [
    (i, draft)
    for i, schema in enumerate(SCHEMAS)
    for draft in DRAFTS
    if draft is None or isinstance(schema, dict)  # a boolean schema has no $schema
]


@pytest.mark.parametrize(("index", "draft"), CORPUS)
def test_corpus_verdicts_match(index: int, draft: str | None) -> None:
    schema = SCHEMAS[index]
    if draft is not None:
        schema = {"$schema": draft, **schema}
    result = verdicts(schema, INSTANCES)
    if result is None:
        return  # a keyword of another draft, or a schema the crate refuses: Python decides
    mine, theirs = result
    assert mine == theirs, [
        (i, m, t) for i, m, t in zip(INSTANCES, mine, theirs, strict=True) if m != t
    ]


@pytest.mark.parametrize(("draft", "schema"), DRAFT_SCHEMAS)
def test_draft_specific_forms_compile_and_match(draft: str, schema: Any) -> None:
    result = verdicts(
        {"$schema": draft, **schema},
        [*INSTANCES, [1, "a"], [1, 2], {"a": 1}, {"a": "x"}, {"c": 1, "d": 1}],
    )
    assert result is not None, "expected to compile"
    mine, theirs = result
    assert mine == theirs


@pytest.mark.parametrize("schema", LEFT_TO_PYTHON, ids=range(len(LEFT_TO_PYTHON)))
def test_schemas_that_may_differ_fall_back(schema: Any) -> None:
    with pytest.raises(Fallback):
        Validator(json.dumps(schema))


def test_the_common_structures_compile() -> None:
    for schema in SCHEMAS[2:]:
        Validator(json.dumps(schema))


# random schemas over the compiled vocabulary, random instances

leaf = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["integer", "number", "string", "boolean", "null", "array", "object"]
            )
        }
    ),
    st.fixed_dictionaries({"minimum": st.integers(-3, 3) | st.floats(-3, 3)}),
    st.fixed_dictionaries({"exclusiveMaximum": st.integers(-3, 3) | st.floats(-3, 3)}),
    st.fixed_dictionaries({"maxLength": st.integers(0, 3)}),
    st.fixed_dictionaries({"minItems": st.integers(0, 2)}),
    st.fixed_dictionaries(
        {
            "enum": st.lists(
                st.sampled_from([0, 1, 1.0, True, False, "a", None, [], {}]), min_size=1, max_size=3
            )
        }
    ),
    st.fixed_dictionaries({"const": st.sampled_from([0, 1, 1.0, True, "a", None, [1], {"a": 1}])}),
    st.fixed_dictionaries({"uniqueItems": st.booleans()}),
    st.fixed_dictionaries({"required": st.lists(st.sampled_from("abc"), unique=True, max_size=2)}),
    st.booleans(),
)
schema_st = st.recursive(
    leaf,
    lambda sub: st.one_of(
        st.fixed_dictionaries(
            {"properties": st.dictionaries(st.sampled_from("abc"), sub, max_size=2)},
            optional={"additionalProperties": sub},
        ),
        st.fixed_dictionaries({"items": sub}),
        st.fixed_dictionaries({"anyOf": st.lists(sub, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"oneOf": st.lists(sub, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"allOf": st.lists(sub, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"not": sub}),
        st.fixed_dictionaries({"contains": sub}),
        st.fixed_dictionaries({"if": sub, "then": sub}, optional={"else": sub}),
    ),
    max_leaves=6,
)
instance_st = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-4, 4)
    | st.sampled_from([1.0, 0.5, -0.0, 2.0])
    | st.sampled_from(["", "a", "ab", "abcd", "😀😀"]),
    lambda sub: (
        st.lists(sub, max_size=3) | st.dictionaries(st.sampled_from("abcd"), sub, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema_st, st.sampled_from(DRAFTS), st.lists(instance_st, min_size=1, max_size=8))
def test_random_schemas_match(schema: Any, draft: str | None, instances: list[Any]) -> None:
    if draft is not None and isinstance(schema, dict):
        schema = {"$schema": draft, **schema}
    result = verdicts(schema, instances)
    if result is None:
        return
    mine, theirs = result
    assert mine == theirs, (
        schema,
        [(i, m, t) for i, m, t in zip(instances, mine, theirs, strict=True) if m != t],
    )
