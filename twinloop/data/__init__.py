"""Small data files shipped with twinloop (demo fixtures); bench/make_fixtures.py remakes them."""

from pathlib import Path

SALES_KPI_HISTORY = Path(__file__).with_name("sales_kpi_history.csv")
SALES_KPI_TRUTH = Path(__file__).with_name("sales_kpi_history.truth.json")
