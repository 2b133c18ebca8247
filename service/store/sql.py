"""SQL shared by the SQL stores (SQLite and PostgreSQL).

Only the placeholder syntax differs between the two drivers (sqlite3 takes
`?`, asyncpg takes `$1`, `$2`, ...), so statements are built by a `Params`
collector that hands out placeholders in order. Values always travel as
parameters; the only names spliced into SQL come from the fixed
`SORT_EXPRESSIONS` table (`sort_expression`), keyed by the `SortColumn` literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.store.protocol import ExecutionRow, ListQuery, SortColumn, SortKey

PlaceholderStyle = Literal["qmark", "dollar"]

# Column order of every execution SELECT; `ExecutionRow(*record)` relies on it.
EXECUTION_COLUMNS = (
    "execution_id, namespace_id, retriever_id, request_id, status, created_at_us, "
    "completed_at_us, duration_ms, credits_used, detail, summary, etag, event_seq"
)

# At most this many IDs in one `event_positions` call (well under SQLite's
# 32,766 host parameters and a cheap IN list for either database).
MAX_POSITIONS = 500


def check_positions_request(execution_ids: Sequence[str]) -> None:
    """Raises ValueError when one `event_positions` call asks for too many IDs."""
    if len(execution_ids) > MAX_POSITIONS:
        raise ValueError(f"at most {MAX_POSITIONS} execution IDs per call")


# What each sort key orders by (ListQuery's rules): a missing duration_ms sorts
# as -1; a missing completed_at (an execution in flight) sorts last in either
# direction, so as -1 descending and as the largest 64-bit integer ascending.
# The SQL indexes repeat these expressions verbatim.
IN_FLIGHT_LAST_ASCENDING = 2**63 - 1
SORT_EXPRESSIONS: dict[SortColumn, str] = {
    "created_at": "created_at_us",
    "completed_at": "COALESCE(completed_at_us, -1)",
    "duration_ms": "COALESCE(duration_ms, -1)",
    "credits_used": "credits_used",
}
_COMPLETED_AT_ASCENDING = f"COALESCE(completed_at_us, {IN_FLIGHT_LAST_ASCENDING})"


def sort_expression(key: SortKey) -> str:
    """The SQL expression `key` orders by."""
    if key.column == "completed_at" and not key.descending:
        return _COMPLETED_AT_ASCENDING
    return SORT_EXPRESSIONS[key.column]


@dataclass(slots=True)
class Params:
    """Collects parameter values and returns the placeholder for each.

    Call `add` in the order the placeholders appear in the SQL text: `?`
    placeholders are positional.
    """

    style: PlaceholderStyle
    values: list[object] = field(default_factory=list)

    def add(self, value: object) -> str:
        self.values.append(value)
        return "?" if self.style == "qmark" else f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: list[object]


@dataclass(frozen=True, slots=True)
class ListStatements:
    page: Statement  # fetches up to limit + 1 rows, so `has_next` needs no COUNT
    count: Statement | None  # only when the query asks for a total


def keyset_position(row: ExecutionRow, sort: tuple[SortKey, ...]) -> tuple[int | float | str, ...]:
    """The `ListQuery.after` value that resumes a listing just after `row`."""
    values: list[int | float | str] = []
    for key in sort:
        if key.column == "created_at":
            values.append(row.created_at_us)
        elif key.column == "completed_at":
            in_flight = IN_FLIGHT_LAST_ASCENDING if not key.descending else -1
            values.append(in_flight if row.completed_at_us is None else row.completed_at_us)
        elif key.column == "duration_ms":
            values.append(-1 if row.duration_ms is None else row.duration_ms)
        else:
            values.append(row.credits_used)
    values.append(row.execution_id)
    return tuple(values)


def build_list_statements(query: ListQuery, style: PlaceholderStyle) -> ListStatements:
    """The SELECT for one page of `query` and, if asked, the COUNT of all matches.

    Raises ValueError for a query no store could answer (no sort key, an
    `after` of the wrong length, a negative limit or offset).
    """
    if not query.sort:
        raise ValueError("a listing needs at least one sort key")
    if query.limit < 0 or query.offset < 0:
        raise ValueError("limit and offset must not be negative")
    if query.after is not None and len(query.after) != len(query.sort) + 1:
        raise ValueError(
            f"after has {len(query.after)} values; expected {len(query.sort) + 1} "
            "(one per sort key, then the execution_id)"
        )

    count = None
    if query.include_total:
        count_params = Params(style)
        count_where = _filters(query, count_params)
        count_sql = f"SELECT COUNT(*) FROM executions WHERE {count_where}"  # noqa: S608
        count = Statement(count_sql, count_params.values)

    params = Params(style)
    conditions = [_filters(query, params)]
    if query.after is not None:
        conditions.append(_after_condition(query.sort, query.after, params))
    order_by = ", ".join(
        f"{sort_expression(key)} {'DESC' if key.descending else 'ASC'}" for key in query.sort
    )
    tie_break = "DESC" if query.sort[-1].descending else "ASC"
    # Names come from SORT_EXPRESSIONS only; every value is a parameter.
    sql = (
        f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE {' AND '.join(conditions)} "  # noqa: S608
        f"ORDER BY {order_by}, execution_id {tie_break} LIMIT {params.add(query.limit + 1)}"
    )
    if query.after is None and query.offset:
        sql += f" OFFSET {params.add(query.offset)}"
    return ListStatements(Statement(sql, params.values), count)


def _filters(query: ListQuery, params: Params) -> str:
    conditions = [
        f"namespace_id = {params.add(query.namespace_id)}",
        f"retriever_id = {params.add(query.retriever_id)}",
    ]
    if query.status == "running":
        conditions.append(f"status IN ({params.add('pending')}, {params.add('processing')})")
    elif query.status is not None:
        conditions.append(f"status = {params.add(query.status)}")
    if query.created_after_us is not None:
        conditions.append(f"created_at_us >= {params.add(query.created_after_us)}")
    if query.created_before_us is not None:
        conditions.append(f"created_at_us < {params.add(query.created_before_us)}")
    return " AND ".join(conditions)


def _after_condition(
    sort: tuple[SortKey, ...], after: tuple[int | float | str, ...], params: Params
) -> str:
    """Rows strictly after the position `after` in the listing's order."""
    expressions = [sort_expression(key) for key in sort] + ["execution_id"]
    # The tie-break on execution_id follows the last key's direction.
    descending = [key.descending for key in sort] + [sort[-1].descending]
    # A redundant bound on the first key alone: it lets the database seek in
    # the index instead of walking it from the start (SQLite uses neither a
    # row value over an expression index nor an OR of prefixes for that).
    bound = f"{expressions[0]} {'<=' if descending[0] else '>='} {params.add(after[0])}"
    if len(set(descending)) == 1:
        # One direction: a row-value comparison.
        op = "<" if descending[0] else ">"
        placeholders = ", ".join(params.add(value) for value in after)
        exact = f"({', '.join(expressions)}) {op} ({placeholders})"
    else:
        # Mixed directions: (a > x) OR (a = x AND b < y) OR (a = x AND b = y AND c > z) ...
        alternatives = []
        for i, (expression, desc) in enumerate(zip(expressions, descending, strict=True)):
            equal_prefix = [f"{expressions[j]} = {params.add(after[j])}" for j in range(i)]
            strictly = f"{expression} {'<' if desc else '>'} {params.add(after[i])}"
            alternatives.append("(" + " AND ".join([*equal_prefix, strictly]) + ")")
        exact = " OR ".join(alternatives)
    return f"({bound} AND ({exact}))"
