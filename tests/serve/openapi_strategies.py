"""Hypothesis strategies for request bodies, drawn from the API's own OpenAPI schema.

Mostly schema-shaped values (so requests reach deep into the handlers) with, at every node, a
chance of a wrong-typed or out-of-range value (so validation paths are fuzzed too). Sizes are
kept small: the point is coverage of shapes, not load.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
GARBAGE = st.one_of(
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), JSON_SCALARS, max_size=3),
)
MAX_DEPTH = 6


def body_strategy(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for JSON bodies that fit (or nearly fit) ``schema``."""
    return _strategy(schema, components, 0)


def _strategy(
    schema: dict[str, Any], components: dict[str, Any], depth: int
) -> st.SearchStrategy[Any]:
    valid = _valid(schema, components, depth)
    # About one draw in fifteen at this node is garbage of any JSON type.
    return st.integers(0, 14).flatmap(lambda i: GARBAGE if i == 0 else valid)


def near(example: Any) -> st.SearchStrategy[Any]:
    """A known-good body, unchanged or with one value replaced, dropped or added.

    Bodies drawn from the schema alone rarely satisfy cross-field rules (a change must name a
    base metric); mutants of real bodies reach the handlers' deeper checks.
    """
    paths = list(_paths(example, ()))
    return st.tuples(st.sampled_from(paths), st.integers(0, 3), GARBAGE).map(
        lambda t: _mutate(example, *t)
    )


def _paths(value: Any, prefix: tuple[Any, ...]) -> Any:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, (*prefix, i))


def _mutate(value: Any, path: tuple[Any, ...], how: int, garbage: Any) -> Any:
    if how == 0:
        return value  # unchanged: the happy path under fuzzing load
    if not path:
        return garbage
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if rest:
            out[head] = _mutate(value[head], rest, how, garbage)
        elif how == 1:
            out.pop(head, None)
        elif how == 2:
            out[head] = garbage
        else:
            out[f"{head}_extra"] = garbage
        return out
    items = list(value)
    items[head] = _mutate(items[head], rest, how, garbage) if rest else garbage
    return items


def _valid(
    schema: dict[str, Any], components: dict[str, Any], depth: int
) -> st.SearchStrategy[Any]:
    if depth > MAX_DEPTH:
        return JSON_SCALARS
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: _valid(components[name], components, depth + 1))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_valid(s, components, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        return _valid(schema["allOf"][0], components, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, components, depth)
    if kind == "array":
        items = schema.get("items", {})
        low = min(int(schema.get("minItems", 0)), 4)
        high = max(low, min(int(schema.get("maxItems", 4)), 4))
        return st.lists(_strategy(items, components, depth + 1), min_size=low, max_size=high)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) < 64)
        return st.text(min_size=int(schema.get("minLength", 0)), max_size=16)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1000))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 100_000))
        return st.integers(int(low) - 1, int(min(high, low + 100_000)) + 1)
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1e6))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1e6))
        return st.floats(float(low) - 1.0, float(min(high, low + 1e6)) + 1.0)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_SCALARS


def _object(
    schema: dict[str, Any], components: dict[str, Any], depth: int
) -> st.SearchStrategy[Any]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = {k: _strategy(v, components, depth + 1) for k, v in props.items() if k in required}
    optional = {
        k: _strategy(v, components, depth + 1) for k, v in props.items() if k not in required
    }
    base = st.fixed_dictionaries(fixed, optional=optional)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        more = st.dictionaries(
            st.text(min_size=1, max_size=10), _strategy(extra, components, depth + 1), max_size=4
        )
        return st.builds(lambda a, b: {**b, **a}, base, more)
    return base
