"""The main job's report: one self-contained report.html (plots embedded) and report.json."""

from twinloop.report.build import ReportFiles, build_sections, summary_lines, write_report

__all__ = ["ReportFiles", "build_sections", "summary_lines", "write_report"]
