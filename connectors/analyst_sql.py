"""What analyst SQL may run: ``POST /api/admin/sql`` and ``streamfold sql``.

The decision is made on ClickHouse's own parse of the statement, never on its text:

1. ``PARSE_SQL`` hands the analyst's text to ClickHouse as a bound ``String`` parameter.
   ``formatQuerySingleLine`` parses it and refuses more than one statement ("Syntax error
   (Multi-statements are not allowed)"); its output, the *canonical* statement, is parsed
   again by ``parseQueryToJSON`` into a JSON AST. Nothing the analyst wrote is executed by
   this step. (``EXPLAIN AST <text>`` is not a safe parser here: chdb runs every
   ``;``-separated statement of a query, and with it ``EXPLAIN AST SELECT 1; INSERT …``
   ran the INSERT.)
2. `check` walks that AST (rules below) and returns the canonical statement as a `Select`.
3. Only the canonical statement is executed, on a connection whose session is
   ``readonly = 1`` with the limits of `ANALYST_SETTINGS`, so what ran is exactly what was
   checked, and the engine refuses writes and setting changes even if a rule here missed
   one.

Rules of `check`, each refusal naming one reason (`ReadOnlyQueryError.reason`):

- one SELECT (``WITH … SELECT``, ``UNION``/``INTERSECT``/``EXCEPT``, subqueries), no
  ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS`` anywhere; AST node kinds outside `NODE_KINDS`
  are refused, so syntax added by a newer ClickHouse is refused until reviewed;
- tables: `ALLOWED_TABLES` by unqualified name, or a ``WITH`` subquery (CTE) in scope; no
  database-qualified name (so no ``system.*`` or ``information_schema.*``); a ``WITH`` name
  may not shadow a table of the project (`PROJECT_TABLES`), so a name is never ambiguous;
- table functions: `TABLE_FUNCTIONS` only (row generators; ``file``, ``url``, ``s3``,
  ``remote``, ``executable``, ``viewExplain`` … are simply not on the list);
- functions (including ``APPLY`` transformers): those ClickHouse files under
  `FUNCTION_CATEGORIES` in ``system.functions``, plus `EXTRA_FUNCTIONS`. The categories
  leave out "Other" (``file``, ``getServerSetting``, ``sleep``, ``throwIf`` …),
  "Dictionary", "Embedded Dictionary", "Introspection", "Machine Learning" (models from
  server config), "AI" (calls an LLM endpoint), "Encryption" and "Internal";
- `HIDDEN_COLUMNS`: ``event_log.data`` is the event payload, and for ``UserCreated`` and
  ``AccountUpdated`` it holds the argon2 ``password_hash``. A statement that reads
  ``event_log`` may therefore not name ``data`` (as any part of an identifier), may not use
  ``*`` or ``COLUMNS(…)`` (``count(*)`` is fine), and may not use ``event_log`` as an ``IN``
  set. This is deliberately coarser than a column resolver: it can refuse a harmless
  statement (an alias called ``data``), never admit one that reads the column.
  ``accounts`` (the password hashes themselves) is not an analyst table at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from connectors.exceptions import AnalystQueryError, ReadOnlyQueryError

ALLOWED_TABLES = frozenset(
    {"users", "event_log", "tracking_events", "tracking_minute", "tracking_rejections"}
)
"""Read models analyst SQL may query (DDL in ``pipeline/projections/``)."""
ACCOUNT_TABLES = frozenset({"users"})
"""Of those, the ones with account data (e-mails, names, roles). Admins read them; the
analyst role does not. (``event_log``'s payload, where hashes are, is hidden from everyone:
``HIDDEN_COLUMNS``.)"""

PROJECT_TABLES = ALLOWED_TABLES | {"accounts", "projection_versions", "projection_checkpoints"}
"""Every table and view the projections create; a ``WITH`` name may not shadow one."""

HIDDEN_COLUMNS: Mapping[str, frozenset[str]] = {"event_log": frozenset({"data"})}
"""Columns of allowed tables that no analyst statement may read (see the module doc)."""

TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries"}
)
"""Table functions that only generate rows: no files, network, other servers or tables."""

FUNCTION_CATEGORIES = frozenset(
    {
        "Aggregate Functions", "Arithmetic", "Arrays", "Bit", "Bitmap", "Comparison",
        "Conditional", "Dates and Times", "Distance", "Encoding", "Financial", "Geo",
        "Geo Polygon", "Hash", "IP Address", "JSON", "Logical", "Map", "Mathematical",
        "Null", "NumericIndexedVector", "Random Number", "Rounding", "String",
        "String Replacement", "String Search", "String Splitting", "Time Series",
        "Time Window", "Tuple", "Type Conversion", "URL", "UUID",
    }
)  # fmt: skip
"""``system.functions.categories`` whose functions compute on their arguments only
(reviewed against chdb 4.4 / ClickHouse 26.9; "URL" is URL *parsing*)."""

EXTRA_FUNCTIONS = frozenset(
    {
        # made by the parser, not listed in system.functions
        "lambda", "exists", "countDistinct", "grouping", "untuple",
        # "Internal": CASE x WHEN …
        "caseWithExpression",
        # "Other": pure helpers
        "bar", "byteSize", "countDigits", "finalizeAggregation", "formatReadableDecimalSize",
        "formatReadableQuantity", "formatReadableSize", "formatReadableTimeDelta",
        "identity", "ignore", "initializeAggregation", "isConstant", "isDecimalOverflow",
        "MACNumToString", "MACStringToNum", "MACStringToOUI", "materialize", "neighbor",
        "parseISO8601Duration", "parseReadableSize", "parseReadableSizeOrNull",
        "parseReadableSizeOrZero", "parseTimeDelta", "runningAccumulate",
        "runningDifference", "runningDifferenceStartingWithFirstValue", "toColumnTypeName",
        "toTypeName", "transform", "variantElement", "variantType", "visibleWidth",
    }
)  # fmt: skip
"""Functions allowed outside `FUNCTION_CATEGORIES`, by canonical name."""

NODE_KINDS = frozenset(
    {
        "SelectWithUnionQuery", "SelectQuery", "Subquery", "WithElement", "ExpressionList",
        "TablesInSelectQuery", "TablesInSelectQueryElement", "TableExpression",
        "TableIdentifier", "TableJoin", "ArrayJoin", "SampleRatio", "Identifier", "Literal",
        "QueryParameter", "Function", "OrderByElement", "InterpolateElement",
        "WindowDefinition", "WindowListElement", "Asterisk", "QualifiedAsterisk",
        "ColumnsRegexpMatcher", "ColumnsListMatcher", "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher", "ColumnsTransformerList", "ColumnsApplyTransformer",
        "ColumnsExceptTransformer", "ColumnsReplaceTransformer",
        "ColumnsReplaceTransformerReplacement",
    }
)  # fmt: skip
"""AST node kinds of ``parseQueryToJSON`` a SELECT may contain."""

_IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn",
     "globalNotNullIn"}
)  # fmt: skip

MAX_RESULT_ROWS = 100_000
"""Most rows one analyst statement returns (the API's ``max_rows`` ceiling)."""

ANALYST_SETTINGS: dict[str, int | str] = {
    "max_execution_time": 30,  # s, then TIMEOUT_EXCEEDED
    "max_memory_usage": 2**30,  # bytes per statement, then MEMORY_LIMIT_EXCEEDED
    "max_result_rows": MAX_RESULT_ROWS,
    "max_result_bytes": 64 * 2**20,
    "result_overflow_mode": "break",  # a truncated result, not an error
    "max_parser_depth": 200,  # keeps the JSON AST well inside Python's recursion limit
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_validate_utf8": 1,  # invalid UTF-8 in a String must not break JSON
    # Last: from here on the session refuses every write and every setting change, in a
    # SET or in a statement's own SETTINGS clause.
    "readonly": 1,
}
"""Session settings of the analyst connection (applied once, in this order, when it opens).
A server's analyst user carries the same values in its profile: README, "Analyst SQL"."""

PARSE_SQL = (
    "SELECT formatQuerySingleLine({sql:String}) AS canonical, parseQueryToJSON(canonical) AS ast"
)
"""One row: (canonical statement, its JSON AST). Needs ClickHouse ≥ 26.8 (chdb 4.4 is 26.9)."""

CATALOG_SQL = (
    "SELECT name, alias_to, case_insensitive, categories, is_aggregate FROM system.functions"
)
COMBINATORS_SQL = "SELECT name FROM system.aggregate_function_combinators"


@dataclass(frozen=True)
class Select:
    """One statement known to be a read-only SELECT: a constant of ours, or what `check`
    accepted. Only these may be sent by a path that retries (a retry runs it again)."""

    sql: str
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Function:
    name: str
    alias_to: str
    category: str
    is_aggregate: bool


class FunctionCatalog:
    """The engine's functions (``CATALOG_SQL`` rows) and aggregate combinators
    (``COMBINATORS_SQL``), to decide whether a function name as written is allowed."""

    def __init__(self, rows: Iterable[Sequence[Any]], combinators: Iterable[str]) -> None:
        self._exact: dict[str, _Function] = {}
        self._folded: dict[str, _Function] = {}
        for name, alias_to, case_insensitive, category, is_aggregate in rows:
            entry = _Function(str(name), str(alias_to), str(category), bool(is_aggregate))
            self._exact[entry.name] = entry
            if case_insensitive:
                self._folded[entry.name.lower()] = entry
        # longest first: "MergeState" before "State"
        self._combinators = sorted(set(combinators), key=len, reverse=True)

    def canonical(self, name: str) -> str:
        """The name an alias or another spelling stands for (``COUNT`` -> ``count``)."""
        entry = self._resolve(name)
        return entry.name if entry else name

    def allowed(self, name: str) -> bool:
        if name in EXTRA_FUNCTIONS:
            return True
        entry = self._resolve(name) or self._aggregate_base(name, depth=0)
        if entry is None:
            return False
        return entry.name in EXTRA_FUNCTIONS or entry.category in FUNCTION_CATEGORIES

    def _lookup(self, name: str) -> _Function | None:
        return self._exact.get(name) or self._folded.get(name.lower())

    def _resolve(self, name: str) -> _Function | None:
        entry = self._lookup(name)
        for _ in range(4):  # alias of an alias; a cycle in the engine's table must not hang
            if entry is None or not entry.alias_to:
                return entry
            entry = self._lookup(entry.alias_to)
        return None

    def _aggregate_base(self, name: str, *, depth: int) -> _Function | None:
        """``sumIf`` -> ``sum``, ``uniqMergeState`` -> ``uniq``: an aggregate function with
        combinator suffixes, resolved to the aggregate it combines."""
        if depth > 4:
            return None
        for suffix in self._combinators:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                entry = self._resolve(base)
                if entry is not None and entry.is_aggregate:
                    return entry
                found = self._aggregate_base(base, depth=depth + 1)
                if found is not None:
                    return found
        return None


def check(
    canonical: str,
    ast: Mapping[str, Any],
    catalog: FunctionCatalog,
    tables: frozenset[str] = ALLOWED_TABLES,
) -> Select:
    """The canonical statement as a `Select` if its AST (``parseQueryToJSON``) obeys the
    rules in the module docstring. ``tables``: what it may read (``ALLOWED_TABLES`` and
    the analyst tables of installed projection plugins).

    Raises:
        ReadOnlyQueryError: it does not; ``reason`` names the first rule it broke.
    """
    if ast.get("type") != "SelectWithUnionQuery":
        _refuse("not a SELECT")
    walker = _Walker(catalog, tables)
    try:
        walker.node(ast, _Scope())
    except RecursionError:
        _refuse("the statement is nested too deeply")
    walker.finish()
    return Select(canonical)


@dataclass(frozen=True)
class _Scope:
    ctes: frozenset[str] = frozenset()  # WITH name AS (subquery): a table source
    aliases: frozenset[str] = frozenset()  # WITH expr AS name: also a valid IN set


class _Walker:
    def __init__(self, catalog: FunctionCatalog, tables: frozenset[str]) -> None:
        self.catalog = catalog
        self.tables = tables
        self.hidden_tables: set[str] = set()
        self.identifiers: list[tuple[str, ...]] = []
        self.matchers = 0

    def node(self, node: Mapping[str, Any], scope: _Scope) -> None:
        kind = node.get("type")
        if kind == "SetQuery":
            _refuse("SETTINGS clause")
        if kind not in NODE_KINDS:
            query = str(kind).endswith("Query")
            _refuse("not a SELECT" if query else f"construct not allowed: {kind}")
        if kind == "SelectWithUnionQuery":
            if node.get("out_file") or node.get("is_into_outfile_with_stdout"):
                _refuse("INTO OUTFILE")
            if node.get("compression") or node.get("compression_level"):
                _refuse("INTO OUTFILE")
            if node.get("format_ast"):
                _refuse("FORMAT clause")
            if node.get("settings_ast") or node.get("settings"):
                _refuse("SETTINGS clause")
        elif kind == "SelectQuery":
            self._select(node, scope)
            return
        elif kind == "TableExpression":
            self._table_expression(node, scope)
            return
        elif kind == "TableIdentifier":
            self._table(node, scope)
            return
        elif kind == "Function":
            self._function(node, scope)
            return
        elif kind == "ColumnsApplyTransformer" and node.get("func_name"):
            self._function_name(str(node["func_name"]))
        elif kind == "Identifier":
            self.identifiers.append(_parts(node))
        elif kind == "Literal":
            return  # a value: nothing to check inside
        if "Asterisk" in kind or "Matcher" in kind:
            self.matchers += 1
        self.children(node, scope)

    def children(self, value: Any, scope: _Scope, *, skip: frozenset[str] = frozenset()) -> None:
        """Walk every typed node under ``value`` (keys named in ``skip`` left out)."""
        if isinstance(value, Mapping):
            for key, child in value.items():
                if key == "type" or key in skip:
                    continue
                if isinstance(child, Mapping) and "type" in child:
                    self.node(child, scope)
                else:
                    self.children(child, scope)
        elif isinstance(value, list):
            for child in value:
                if isinstance(child, Mapping) and "type" in child:
                    self.node(child, scope)
                else:
                    self.children(child, scope)

    def _select(self, node: Mapping[str, Any], scope: _Scope) -> None:
        # A WITH element sees the elements before it and the enclosing scopes; the rest of
        # the SELECT sees them all. (ClickHouse's own scoping is wider, e.g. into later
        # UNION branches; being narrower only refuses more.) No WITH RECURSIVE: an
        # element does not see itself.
        ctes, aliases = set(scope.ctes), set(scope.aliases)
        with_list = node.get("with") or {}
        for element in with_list.get("children", []):
            inner = _Scope(frozenset(ctes), frozenset(aliases))
            if element.get("type") == "WithElement":
                name = str(element.get("name", ""))
                _no_shadow(name)
                self.children(element, inner, skip=frozenset({"name"}))
                ctes.add(name)
            else:
                alias = element.get("alias")
                self.node(element, inner)
                if alias:
                    _no_shadow(str(alias))
                    aliases.add(str(alias))
        self.children(node, _Scope(frozenset(ctes), frozenset(aliases)), skip=frozenset({"with"}))

    def _table_expression(self, node: Mapping[str, Any], scope: _Scope) -> None:
        function = node.get("table_function")
        if function is not None:
            name = str(function.get("name"))
            if name not in TABLE_FUNCTIONS:
                _refuse(f"table function not allowed: {name}")
            self.children(function, scope, skip=frozenset({"name"}))
        self.children(node, scope, skip=frozenset({"table_function"}))

    def _table(self, node: Mapping[str, Any], scope: _Scope) -> None:
        parts = _parts(node)
        if len(parts) == 1 and parts[0] in scope.ctes:
            return
        if len(parts) == 1 and parts[0] in self.tables:
            if parts[0] in HIDDEN_COLUMNS:
                self.hidden_tables.add(parts[0])
            return
        _refuse(f"table not allowed: {'.'.join(parts)}")

    def _function(self, node: Mapping[str, Any], scope: _Scope) -> None:
        name = str(node.get("name"))
        self._function_name(name)
        arguments = (node.get("arguments") or {}).get("children", [])
        if name in _IN_FUNCTIONS and len(arguments) == 2:
            right = arguments[1]
            if right.get("type") == "Identifier":
                self._in_set(_parts(right), scope)
                self.node(arguments[0], scope)
                self.children(node, scope, skip=frozenset({"name", "arguments"}))
                return
        if (
            self.catalog.canonical(name) == "count"
            and len(arguments) == 1
            and arguments[0] == {"type": "Asterisk"}
        ):
            # count(*) counts rows; it reads no column
            self.children(node, scope, skip=frozenset({"name", "arguments"}))
            return
        self.children(node, scope, skip=frozenset({"name"}))

    def _function_name(self, name: str) -> None:
        if not self.catalog.allowed(name):
            _refuse(f"function not allowed: {name}")

    def _in_set(self, parts: tuple[str, ...], scope: _Scope) -> None:
        """``x IN name``: ClickHouse takes ``name`` as a table, a CTE or a WITH alias."""
        if len(parts) == 1 and (parts[0] in scope.ctes or parts[0] in scope.aliases):
            return
        if len(parts) == 1 and parts[0] in self.tables:
            hidden = HIDDEN_COLUMNS.get(parts[0])
            if hidden:  # the set is every column of the table
                _refuse(f"column not allowed: {parts[0]}.{min(hidden)}")
            return
        _refuse(f"table not allowed: {'.'.join(parts)}")

    def finish(self) -> None:
        for table in sorted(self.hidden_tables):
            for column in sorted(HIDDEN_COLUMNS[table]):
                if any(column in parts for parts in self.identifiers):
                    _refuse(f"column not allowed: {table}.{column}")
                if self.matchers:  # * and COLUMNS(…) would include it
                    _refuse(f"column not allowed: {table}.{column} (name the columns)")


def _parts(node: Mapping[str, Any]) -> tuple[str, ...]:
    parts = node.get("name_parts")
    return tuple(str(p) for p in parts) if parts else (str(node.get("name", "")),)


def _no_shadow(name: str) -> None:
    if name in PROJECT_TABLES:
        _refuse(f"WITH name shadows a table: {name}")


def _refuse(reason: str) -> NoReturn:
    raise ReadOnlyQueryError(reason)


_POSITION = re.compile(r"failed at position (\d+)")
_SECONDS, _BYTES = ANALYST_SETTINGS["max_execution_time"], ANALYST_SETTINGS["max_memory_usage"]
_LIMITS = {  # ClickHouse error name -> what the analyst is told
    "TIMEOUT_EXCEEDED": f"the statement ran longer than {_SECONDS} s",
    "MEMORY_LIMIT_EXCEEDED": f"the statement needed more than {_BYTES} bytes of memory",
    "TOO_DEEP_RECURSION": "the statement is nested too deeply",
    "TOO_DEEP_AST": "the statement is nested too deeply",
    "TOO_BIG_AST": "the statement is too large",
}


def parse_failure(
    code: int | None, name: str | None, message: str
) -> ReadOnlyQueryError | AnalystQueryError:
    """What `PARSE_SQL` failing on the analyst's text means for the analyst.

    ``message`` is ClickHouse's text; it is read for the reason only, never passed on (it
    quotes the statement). Returns a refusal (several statements, not a SELECT) or a short
    `AnalystQueryError` (syntax error at a position).
    """
    if name == "SYNTAX_ERROR" or code == 62:
        if "Multi-statements are not allowed" in message:
            return ReadOnlyQueryError("multiple statements")
        position = _POSITION.search(message)
        where = f" at position {position.group(1)}" if position else ""
        return AnalystQueryError(f"syntax error{where}")
    if name in _LIMITS:
        return AnalystQueryError(_LIMITS[name])
    # parseQueryToJSON parses every SELECT; what it cannot describe (an INSERT with inline
    # data: BAD_ARGUMENTS) is not one
    return ReadOnlyQueryError("not a SELECT")


def run_failure(code: int | None, name: str | None) -> AnalystQueryError:
    """A short error for a checked statement ClickHouse refused to run (unknown column,
    type mismatch, a limit): the error's name and code, never its text, which can quote
    the data it failed on."""
    if name in _LIMITS:
        return AnalystQueryError(_LIMITS[name])
    return AnalystQueryError(f"ClickHouse refused the statement: {name or 'error'} (code {code})")


def fingerprint(sql: str) -> dict[str, Any]:
    """How logs name an analyst statement: never verbatim (it can carry secrets)."""
    return {"sql_sha256": hashlib.sha256(sql.encode()).hexdigest()[:16], "sql_chars": len(sql)}
