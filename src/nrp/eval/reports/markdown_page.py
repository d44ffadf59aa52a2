"""The report as one Markdown page (``report.md``): the same sections as the HTML page, readable on a repository site.

A repository browser shows ``index.html`` as source; it renders this page, with the figures beside it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.eval.reports.html import Section
from nrp.eval.reports.tables import table_to_markdown


def write_markdown_page(path: str | os.PathLike, title: str, sections: Sequence[Section]) -> Path:
    """Write ``sections`` as one Markdown page, atomically: facts as a list, tables, figures with captions.

    Images are linked by their path relative to the page (URL-quoted); preformatted text is a fenced block.

    Args:
        path: output ``.md`` file; parent folders are created.
        title: the page's top heading.
        sections: the page's parts, in order.

    Returns:
        ``path``.

    Raises:
        InputError: a listed image does not exist.
    """
    path = Path(path)
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.facts:
            lines += [f"- **{name}**: {value}" for name, value in section.facts] + [""]
        lines += [table_to_markdown(table) for table in section.tables]
        for figure in section.figures():
            if not figure.path.is_file():
                raise InputError(f"image for the report not found: {figure.path}")
            relative = Path(os.path.relpath(figure.path.resolve(), path.parent.resolve())).as_posix()
            lines += [f"![{figure.path.name}]({urllib.parse.quote(relative)})", ""]
            if figure.caption:
                lines += [f"*{figure.caption}*", ""]
        if section.preformatted is not None:
            lines += ["```", section.preformatted, "```", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return path
