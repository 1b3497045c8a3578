"""A/B statistics: sufficient statistics, frequentist and Bayesian tests, corrections, power.

The entry point is :func:`compare` (or :func:`compare_metrics`): every metric in any input form,
every treatment against control, corrected across metrics, with the sample-ratio check. Raw
per-unit files come in through :func:`load_raw`. See docs/statistics.md for every method.
"""

from twinloop.stats.compare import ComparisonResult, compare, compare_metrics, parse_spec
from twinloop.stats.inputs import (
    BinomialData,
    CompareSettings,
    CompareSpec,
    ContinuousData,
    CovariateData,
    GaussianPrior,
    MetricSpec,
    PointData,
    RatioData,
    RawData,
    SumsData,
    VariantSpec,
)
from twinloop.stats.rawdata import RawTable, from_arrow, load_raw
from twinloop.stats.results import MetricComparison, Note, NoteCode, SrmResult
from twinloop.stats.sufficient import (
    BinomialStats,
    CovariateStats,
    RatioStats,
    SampleStats,
    merge,
)

__all__ = [
    "BinomialData",
    "BinomialStats",
    "CompareSettings",
    "CompareSpec",
    "ComparisonResult",
    "ContinuousData",
    "CovariateData",
    "CovariateStats",
    "GaussianPrior",
    "MetricComparison",
    "MetricSpec",
    "Note",
    "NoteCode",
    "PointData",
    "RatioData",
    "RatioStats",
    "RawData",
    "RawTable",
    "SampleStats",
    "SrmResult",
    "SumsData",
    "VariantSpec",
    "compare",
    "compare_metrics",
    "from_arrow",
    "load_raw",
    "merge",
    "parse_spec",
]
