"""The contract every model shares: the frozen base, the store-id rule, time units, input errors.

Value objects are frozen pydantic models that refuse unknown keys (:class:`FrozenModel`); an id
that may become a store key matches :data:`ID_PATTERN`; time conversions use the constants below.

**Field paths.** A pydantic ``ValidationError`` becomes :class:`~twinloop.errors.InvalidInput`
through :func:`invalid_input` only, so every error names its field in one style: the path *in the
user's input*, keys joined by dots and list positions in brackets —
``metrics[0].variants.B.n``, ``models[1].import_path``, ``environment.churn.base_hazard_per_day``.
pydantic's union-member labels (a discriminator value such as ``profile``, ``tagged-union[…]``,
``function-after[…]``) are not part of the user's input and are dropped: given the input, the
location is walked through it and only keys and positions that exist there are kept (a missing
key, the last part, is kept). A list the user may give as an object keyed by name (the analyzer's
``metrics``) is addressed by name: ``metrics.conversion.variants.B.n``. Hand-written errors build
their paths with :func:`field_path`. The message is pydantic's without its ``Value error,``
prefix, ending in ``, got <value>`` when the offending value is a scalar.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from twinloop.errors import InvalidInput

__all__ = [
    "DAYS_PER_WEEK",
    "HOURS_PER_DAY",
    "ID_FIELD_PATTERN",
    "ID_PATTERN",
    "NO_INPUT",
    "SECONDS_PER_DAY",
    "SECONDS_PER_HOUR",
    "SECONDS_PER_WEEK",
    "FrozenModel",
    "field_path",
    "input_path",
    "invalid_input",
]

SECONDS_PER_HOUR: Final = 3_600.0
HOURS_PER_DAY: Final = 24
SECONDS_PER_DAY: Final = 86_400.0
DAYS_PER_WEEK: Final = 7
SECONDS_PER_WEEK: Final = DAYS_PER_WEEK * SECONDS_PER_DAY

# The Store's id rule: ids become keys in Redis and SQLite and parts of HTTP paths.
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ID_FIELD_PATTERN: Final = f"^{ID_PATTERN.pattern}$"  # the same rule as a pydantic/FastAPI pattern


class FrozenModel(BaseModel):
    """A value object: immutable (hashable, safe to share between threads and actors) and strict
    about its keys, so a misspelt field is an error instead of a silently ignored default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _NoInput:
    """Marker: the validated input is not at hand, so union labels are recognised by shape."""

    def __repr__(self) -> str:
        return "NO_INPUT"


NO_INPUT: Final = _NoInput()
_WITHOUT_VALUE = frozenset({"value_error", "assertion_error", "missing", "extra_forbidden"})


def field_path(*parts: str | int) -> str:
    """Parts of a path in the one style: ``field_path("metrics", 0, "n") == "metrics[0].n"``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path += f".{part}" if path else part
    return path


def input_path(
    loc: Sequence[int | str], data: object = NO_INPUT, *, named: Collection[str] = ()
) -> tuple[str | int, ...]:
    """The parts of pydantic's error location that are keys or positions in ``data``.

    A part that is not in the input is a union label when it is the value of one of the node's
    own keys (a discriminator: ``{"form": "binomial"}``) or when the path goes on inside the same
    node; otherwise (a missing key, an alias) it is kept and the rest is read by shape.
    ``named`` lists fields whose list items are addressed by their ``name`` (a list the user may
    give as an object keyed by name): ``metrics[0]`` becomes ``metrics.<name>``.
    """
    if data is NO_INPUT:
        return _by_shape(loc)
    parts: list[str | int] = []
    node: object = data
    for index, part in enumerate(loc):
        child = _child(node, part)
        if child is not NO_INPUT:
            named_item = isinstance(part, int) and bool(parts) and parts[-1] in named
            name = child.get("name") if isinstance(child, Mapping) else getattr(child, "name", None)
            parts.append(name if named_item and isinstance(name, str) else part)
            node = child
        elif not _is_label(node, part, loc[index + 1 :]):
            return (*parts, *_by_shape(loc[index:]))
    return tuple(parts)


def _is_label(node: object, part: int | str, rest: Sequence[int | str]) -> bool:
    if not isinstance(part, str) or "[" in part:
        return True
    if isinstance(node, Mapping):
        tag = any(isinstance(value, str) and value == part for value in node.values())
        return bool(rest) and (tag or _child(node, rest[0]) is not NO_INPUT)
    return not isinstance(node, BaseModel)  # a scalar has no keys: what follows is a label


def _child(node: object, part: int | str) -> object:
    if isinstance(node, Mapping):
        return node.get(part, NO_INPUT)
    if isinstance(node, list | tuple) and isinstance(part, int):
        return node[part] if -len(node) <= part < len(node) else NO_INPUT
    if isinstance(node, BaseModel) and isinstance(part, str) and part in type(node).model_fields:
        return getattr(node, part)
    return NO_INPUT


def _by_shape(loc: Sequence[int | str]) -> tuple[str | int, ...]:
    """Without the input: drop ``label[…]`` parts and the tag that follows ``tagged-union[…]``."""
    parts: list[str | int] = []
    after_union = False
    for part in loc:
        if isinstance(part, str) and "[" in part:
            after_union = part.startswith("tagged-union")
        elif after_union:
            after_union = False
        else:
            parts.append(part)
    return tuple(parts)


def invalid_input(
    exc: ValidationError,
    data: object = NO_INPUT,
    *,
    field: str = "",
    named: Collection[str] = (),
    messages: Mapping[str, str] | None = None,
    root: str = "input",
) -> InvalidInput:
    """pydantic's first error as :class:`InvalidInput` naming its path in ``data``.

    ``field`` prefixes the path (where ``data`` sits in a larger request); ``root`` names an
    error of the whole input. ``named``: see :func:`input_path`. The message drops
    pydantic's ``Value error,`` prefix and carries the offending value when it is a scalar.
    ``messages`` overrides the wording per pydantic error type (formatted with the error's
    context, e.g. ``{tag}`` for ``union_tag_invalid``), for unions that stand for a domain word.
    """
    first = exc.errors()[0]
    parts = input_path(first["loc"], data, named=named)
    path = field_path(field, *parts) or root
    return InvalidInput(path, _message(first, messages or {}))


def _message(error: Mapping[str, Any], messages: Mapping[str, str]) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in messages:
        return messages[kind].format(**ctx)
    if kind == "union_tag_not_found":
        name = _unquote(ctx.get("discriminator"))
        return f"cannot tell the {name} from the keys; give {name!r}"
    if kind == "union_tag_invalid":
        return f"unknown {_unquote(ctx.get('discriminator'))} {ctx.get('tag')!r}; " + (
            f"choose from {ctx.get('expected_tags')}"
        )
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if isinstance(value, int | float | str | bool) and kind not in _WITHOUT_VALUE:
        return f"{message}, got {value!r}"
    return message


def _unquote(text: object) -> str:
    return str(text).strip("'\"") if text else "tag"
