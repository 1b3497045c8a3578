"""The shared contract: frozen models, and ValidationError paths that are paths in the input."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from twinloop.contract import (
    ID_FIELD_PATTERN,
    ID_PATTERN,
    FrozenModel,
    field_path,
    input_path,
    invalid_input,
)
from twinloop.errors import InvalidInput


class _Binomial(FrozenModel):
    form: Literal["binomial"]
    n: int = Field(ge=0)


class _Point(FrozenModel):
    form: Literal["point"]
    value: float


class _Metric(FrozenModel):
    name: str
    variants: dict[str, Annotated[_Binomial | _Point, Field(discriminator="form")]]


class _Spec(FrozenModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    metrics: list[_Metric]
    primary_metrics: tuple[int, ...] = ()


def _error(data: dict[str, Any], **kwargs: Any) -> InvalidInput:
    with pytest.raises(ValidationError) as caught:
        _Spec.model_validate(data)
    return invalid_input(caught.value, data, **kwargs)


def _metric(**variant: Any) -> dict[str, Any]:
    return {"metrics": [{"name": "conv", "variants": {"B": variant}}]}


def test_frozen_models_refuse_changes_and_unknown_keys() -> None:
    """A value object cannot be changed and a misspelt key is an error."""
    point = _Point(form="point", value=1.0)
    with pytest.raises(ValidationError):
        point.value = 2.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="valu"):
        _Point.model_validate({"form": "point", "valu": 1.0})


def test_paths_drop_union_tags_and_keep_positions_in_brackets() -> None:
    """The discriminator value pydantic puts in the location is not part of the user's input."""
    err = _error(_metric(form="binomial", n=-1))
    assert err.field == "metrics[0].variants.B.n"
    assert err.message == "Input should be greater than or equal to 0, got -1"
    missing = _error(_metric(form="point"))
    assert (missing.field, missing.message) == ("metrics[0].variants.B.value", "Field required")
    extra = _error(_metric(form="point", value=1.0, typo=2))
    assert extra.field == "metrics[0].variants.B.typo"


def test_named_items_prefix_and_aliases() -> None:
    """Items of a named list are addressed by name; a prefix places the input in a request."""
    err = _error(_metric(form="binomial", n=-1), named={"metrics"}, field="testResult")
    assert err.field == "testResult.metrics.conv.variants.B.n"
    camel = _error({"metrics": [], "primaryMetrics": ["x"]})
    assert camel.field == "primaryMetrics[0]" and camel.message.endswith(", got 'x'")


def test_union_tag_messages_name_the_tag_and_can_be_worded_per_domain() -> None:
    """An unknown tag is named with the choices; a caller may word it in its domain."""
    err = _error(_metric(form="poisson"))
    assert err.field == "metrics[0].variants.B"
    assert err.message == "unknown form 'poisson'; choose from 'binomial', 'point'"
    worded = _error(_metric(form="poisson"), messages={"union_tag_invalid": "no form {tag!r}"})
    assert worded.message == "no form 'poisson'"
    assert _error(_metric(n=3)).message == "cannot tell the form from the keys; give 'form'"


def test_without_the_input_locations_are_read_by_shape() -> None:
    """Labels such as ``function-after[...]`` and the tag after ``tagged-union[...]`` drop out."""
    loc = ("a", 0, "tagged-union[X,Y]", "x", "function-after[f(), int]", "b")
    assert input_path(loc) == ("a", 0, "b")
    assert field_path("a", 0, "b", 1) == "a[0].b[1]"
    assert field_path("", "a") == "a"


def test_the_store_id_rule_is_one_rule() -> None:
    """The compiled pattern and the field pattern accept and refuse the same ids."""
    for ident, ok in (("exp-1.2_b", True), ("-x", False), ("a" * 128, True), ("a" * 129, False)):
        assert bool(ID_PATTERN.fullmatch(ident)) is ok
        assert bool(re.match(ID_FIELD_PATTERN, ident)) is ok
