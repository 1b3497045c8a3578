"""One replicate's A/B analysis: the per-customer table → a two-sample test per KPI and variant.

This is a thin adapter onto the statistics engine (``twinloop.stats``), so a test in the twin is
decided exactly as a real test would be: per-variant sufficient statistics
(``SampleStats``/``BinomialStats``/``RatioStats``), then Welch's t for means, the two-proportion
z for 0/1 outcomes and the delta method for ratio KPIs (``frequentist.evaluate``). What the
engine does not do — picking a table's columns per variant and deciding which arm a significant
effect favours — is done here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from twinloop.sandbox.indicators import UNIT_KPIS, unit_direction
from twinloop.stats.frequentist import Contrast, evaluate, ratio, two_proportion, welch
from twinloop.stats.sufficient import BinomialStats, RatioStats, SampleStats

Favours = Literal["treatment", "control", "neither"]


@dataclass(frozen=True, slots=True)
class UnitTest:
    """One KPI, one treatment against the control, in one replicate."""

    kpi: str
    treatment: str
    method: str
    control_n: int
    treatment_n: int
    control_mean: float | None
    treatment_mean: float | None
    effect: float | None
    std_error: float | None
    p_value: float | None
    significant: bool
    favours: Favours


def _column(units: pa.Table, name: str) -> NDArray[np.float64]:
    """A column as float64 with nulls as NaN."""
    column = pc.cast(units.column(name), pa.float64())
    return np.asarray(column.fill_null(np.nan).to_numpy(), dtype=np.float64)


def _variant_codes(units: pa.Table, variants: Sequence[str]) -> NDArray[np.int64]:
    """Each row's index into ``variants`` (-1 for a name not listed)."""
    column = units.column("variant").combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    names = [str(v) for v in column.dictionary.to_pylist()]
    codes = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    # One extra slot maps a null variant (code -1) to "not listed".
    remap = np.array([*(variants.index(n) if n in variants else -1 for n in names), -1])
    mapped: NDArray[np.int64] = remap[codes]
    return mapped


def _contrast(
    kind: str, control: NDArray[np.float64], treatment: NDArray[np.float64]
) -> Contrast | None:
    """The engine's contrast for two arms' per-unit values (None if no test is possible)."""
    if kind == "proportion":
        if control.size == 0 or treatment.size == 0:
            return None
        return two_proportion(
            BinomialStats.from_array(control), BinomialStats.from_array(treatment)
        )
    if control.size < 2 or treatment.size < 2:
        return None
    return welch(SampleStats.from_array(control), SampleStats.from_array(treatment))


def _ratio_contrast(
    num: tuple[NDArray[np.float64], NDArray[np.float64]],
    den: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> Contrast | None:
    if min(num[0].size, num[1].size) < 2 or den[0].sum() <= 0 or den[1].sum() <= 0:
        return None
    return ratio(RatioStats.from_arrays(num[0], den[0]), RatioStats.from_arrays(num[1], den[1]))


def analyse_units(
    units: pa.Table,
    control: str,
    treatments: Sequence[str],
    kpis: Sequence[str],
    alpha: float,
) -> tuple[UnitTest, ...]:
    """Test every KPI for every treatment against the control on one replicate's customers."""
    variants = [control, *treatments]
    codes = _variant_codes(units, variants)
    arms = [codes == i for i in range(len(variants))]
    cache: dict[str, NDArray[np.float64]] = {}

    def values(column: str, arm: int) -> NDArray[np.float64]:
        """One arm's values of a column, customers without a value (null) dropped."""
        if column not in cache:
            cache[column] = _column(units, column)
        x: NDArray[np.float64] = cache[column][arms[arm]]
        return x[~np.isnan(x)]

    out: list[UnitTest] = []
    for kpi in kpis:
        kind, column, denominator = UNIT_KPIS[kpi]
        for t, name in enumerate(treatments, start=1):
            if kind == "ratio":
                assert denominator is not None
                num = (values(column, 0), values(column, t))
                den = (values(denominator, 0), values(denominator, t))
                contrast = _ratio_contrast(num, den)
                n_c, n_t = num[0].size, num[1].size
            else:
                c, x = values(column, 0), values(column, t)
                contrast = _contrast(kind, c, x)
                n_c, n_t = c.size, x.size
            out.append(_decide(kpi, name, contrast, n_c, n_t, alpha))
    return tuple(out)


def _decide(
    kpi: str, treatment: str, contrast: Contrast | None, n_c: int, n_t: int, alpha: float
) -> UnitTest:
    if contrast is None:
        return UnitTest(kpi, treatment, "none", n_c, n_t, None, None, None, None, None, False,
                        "neither")  # fmt: skip
    result = evaluate(contrast, alpha)
    p = result.p_value
    significant = p is not None and p < alpha
    favours: Favours = "neither"
    if significant and contrast.delta != 0:
        better = contrast.delta > 0 if unit_direction(kpi) == "higher" else contrast.delta < 0
        favours = "treatment" if better else "control"
    return UnitTest(
        kpi=kpi,
        treatment=treatment,
        method=contrast.method,
        control_n=n_c,
        treatment_n=n_t,
        control_mean=contrast.control_mean,
        treatment_mean=contrast.treatment_mean,
        effect=contrast.delta,
        std_error=result.absolute.std_error,
        p_value=p,
        significant=significant,
        favours=favours,
    )
