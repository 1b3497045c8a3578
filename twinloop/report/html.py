"""The report page: sections of plot + text rendered into ONE self-contained, printable HTML file.

No scripts, no fonts, no stylesheets from anywhere else: the CSS is inline and every image is a
``data:`` URI, so the file opens offline, can be mailed as an attachment and prints cleanly
(each section avoids a page break inside, plots scale to the page width).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

CSS = """
:root { --ink:#1d2430; --muted:#5b6675; --line:#dde3ea; --accent:#1f6fb4; --bad:#d1495b;
        --good:#2e8b57; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1080px; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.summary { background: #f5f8fb; border-left: 4px solid var(--accent); padding: 10px 16px;
           margin: 0 0 24px; }
.summary li { margin: 2px 0; }
section { margin: 0 0 28px; break-inside: avoid; page-break-inside: avoid; }
.row { display: flex; gap: 20px; align-items: flex-start; }
.plot { flex: 1 1 62%; min-width: 0; }
.plot img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
.text { flex: 1 1 38%; font-size: 14px; }
.text p { margin: 0 0 8px; }
.sure { color: var(--muted); font-size: 13px; border-top: 1px dashed var(--line);
        padding-top: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
.row.wide { flex-direction: column; }
@media (max-width: 800px) { .row { flex-direction: column; } }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .row { display: block; }
  .plot img { max-height: 14cm; }
  section { page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass(frozen=True)
class Image:
    """One embedded plot: a ``data:`` URI and its alternative text."""

    uri: str
    alt: str


@dataclass(frozen=True)
class Section:
    """A report section: plots on the left, what it means and how sure we are on the right."""

    id: str
    title: str
    images: Sequence[Image]
    meaning: Sequence[str]
    certainty: str
    table: Sequence[Sequence[str]] = field(default_factory=tuple)  # first row = header
    wide: bool = False  # the plot takes the full width, the text goes below it


def render_html(
    title: str, subtitle: str, summary: Sequence[str], sections: Sequence[Section], footer: str
) -> str:
    """The whole page as one string; every text is HTML-escaped, images must be data: URIs."""
    for s in sections:
        for image in s.images:
            if not image.uri.startswith("data:image/"):
                raise ValueError(f"section {s.id!r}: image must be a data: URI, not {image.uri!r}")
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1><p class='sub'>{e(subtitle)}</p>",
        "<div class='summary'><ul>",
        *(f"<li>{e(line)}</li>" for line in summary),
        "</ul></div>",
    ]
    for s in sections:
        row = "row wide" if s.wide else "row"
        parts.append(f"<section id='{e(s.id)}'><h2>{e(s.title)}</h2><div class='{row}'>")
        if s.images:  # a section of text and table only takes the whole width
            parts.append("<div class='plot'>")
            parts.extend(f"<img src='{image.uri}' alt='{e(image.alt)}'>" for image in s.images)
            parts.append("</div>")
        parts.append("<div class='text'>")
        parts.extend(f"<p>{e(p)}</p>" for p in s.meaning)
        if s.table:
            header, *rows = s.table
            parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in header) + "</tr>")
            parts.extend("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
            parts.append("</table>")
        parts.append(f"<p class='sure'>How sure: {e(s.certainty)}</p></div></div></section>")
    parts.append(f"<footer>{e(footer)}</footer></body></html>")
    return "\n".join(parts)
