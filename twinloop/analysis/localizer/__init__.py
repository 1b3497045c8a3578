"""Root-cause localization: the few dimension-value combinations that explain a KPI's deviation.

The one entry point is :func:`localize` (leaf table in, ranked combinations out); the modules
behind it are its pieces — ``leaves`` (the table it reads), ``sources`` (building that table from
files, KPI histories and A/B units), ``evidence``, ``cuboids`` and ``search`` (the likelihood
search), ``models`` (settings and results).
"""

from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import element_label, localize
from twinloop.analysis.localizer.models import (
    LocalizerSettings,
    RootCauseElement,
    RootCauseResult,
)

__all__ = [
    "LeafTable",
    "LocalizerSettings",
    "RootCauseElement",
    "RootCauseResult",
    "element_label",
    "localize",
]
