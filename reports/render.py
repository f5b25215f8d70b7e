"""Render a ``Report`` as Markdown (for a ticket) or as one self-contained HTML page.

Both go through Jinja2 environments with ``StrictUndefined`` and templates as files in
``reports/templates/``. Every string in a report may come from outside (a replica's name, an
operator's reason, an error message), so every ``{{ }}`` is escaped without the template
asking: the HTML environment autoescapes; the Markdown one escapes through ``finalize``
(Markdown has no autoescape of its own), making ``| < > & ` [ ] *``, backslashes and
newlines harmless in tables and text. The templates compute nothing: the report holds every value.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from reports.model import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"

_MARKDOWN = str.maketrans(
    {
        "\\": "\\\\",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "|": "\\|",
        "`": "&#96;",
        "[": "\\[",
        "]": "\\]",
        "*": "\\*",
        "\r": "",
        "\n": "<br>",
    }
)


def markdown_escape(value: Any) -> str:
    """``value`` as text that stays text in Markdown, inside or outside a table cell."""
    return str(value).translate(_MARKDOWN)


@cache
def _markdown_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown is escaped by finalize, below, not as HTML
        finalize=markdown_escape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _html_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_markdown(report: Report) -> str:
    """The report as Markdown: readable as plain text, tables safe to paste in a ticket."""
    return _markdown_env().get_template("report.md.j2").render(report=report)


def render_html(report: Report) -> str:
    """The report as one HTML page: inline CSS and SVG, no script, nothing fetched."""
    return _html_env().get_template("report.html.j2").render(report=report)


def render_chaos_markdown(view: Any) -> str:
    """A chaos run's report as Markdown (``reports.chaos.ChaosView``)."""
    return _markdown_env().get_template("chaos.md.j2").render(run=view)


def render_chaos_html(view: Any) -> str:
    """A chaos run's report as one HTML page (``reports.chaos.ChaosView``)."""
    return _html_env().get_template("chaos.html.j2").render(run=view)
