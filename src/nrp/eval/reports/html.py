"""One self-contained, offline HTML page: tables, images and the configuration; no external CSS or JS."""

from __future__ import annotations

import base64
import html
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nrp.atomic import atomic_path
from nrp.errors import InputError
from nrp.eval.reports.tables import Table

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.5em 0 0.3em; }
figure { margin: 0 0 1.5em; }
figcaption { color: #444; max-width: 60em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
dd { margin: 0; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


@dataclass(frozen=True)
class Figure:
    """An image of the report with the caption printed under it.

    Args:
        path: the image file (PNG, JPEG, WebP, GIF).
        caption: what it shows, one or two sentences; empty for none.
    """

    path: Path
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """One part of the page: a heading, then optional paragraph, facts, tables, figures and preformatted text.

    Args:
        title: the section's heading.
        text: a paragraph under the heading, or None.
        facts: ``(name, value)`` pairs shown as a definition list (e.g. the run's set-up).
        tables: tables rendered as ``<table>`` (each with its title as caption).
        images: image files or :class:`Figure` s (with captions), referenced by relative path or embedded.
        preformatted: text shown verbatim in a ``<pre>`` block (e.g. the configuration), or None.
    """

    title: str
    text: str | None = None
    facts: Sequence[tuple[str, str]] = field(default_factory=tuple)
    tables: Sequence[Table] = field(default_factory=tuple)
    images: Sequence[Path | Figure] = field(default_factory=tuple)
    preformatted: str | None = None

    def figures(self) -> list[Figure]:
        """The section's images as :class:`Figure` s (a bare path has no caption)."""
        return [image if isinstance(image, Figure) else Figure(Path(image)) for image in self.images]


def table_to_html(table: Table) -> str:
    """A :class:`Table` as an HTML ``<table>``: its title as ``<caption>``, a header row, body rows; all escaped."""
    e = html.escape
    lines = ["<table>", f"<caption>{e(table.title)}</caption>"]
    lines.append("<tr>" + "".join(f"<th>{e(cell)}</th>" for cell in table.header) + "</tr>")
    for cells in table.body:
        tds = [f'<td class="num">{e(c)}</td>' if i >= table.numeric_from else f"<td>{e(c)}</td>" for i, c in enumerate(cells)]
        lines.append("<tr>" + "".join(tds) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _image_source(image: Path, page_folder: Path, embed: bool) -> str:
    if embed:
        mime = _MIME.get(image.suffix.lower())
        if mime is None:
            raise InputError(f"cannot embed {image}: known image suffixes are {', '.join(_MIME)}")
        return f"data:{mime};base64," + base64.b64encode(image.read_bytes()).decode("ascii")
    relative = Path(os.path.relpath(image.resolve(), page_folder.resolve()))
    return urllib.parse.quote(relative.as_posix())


def write_html(
    path: str | os.PathLike, title: str, sections: Sequence[Section], *, embed_images: bool = False
) -> Path:
    """Write one offline HTML page of ``sections``, atomically; every text is escaped with ``html.escape``.

    Images are referenced by their path relative to the page's folder (URL-quoted), or, with
    ``embed_images``, inlined as base64 ``data:`` URIs so the page stands alone.

    Args:
        path: output ``.html`` file; parent folders are created.
        title: page title and top heading.
        sections: the page's parts, in order.
        embed_images: inline images instead of linking them.

    Returns:
        ``path``.

    Raises:
        InputError: a listed image does not exist (or cannot be embedded).
    """
    path = Path(path)
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{e(section.title)}</h2>")
        if section.text:
            body.append(f"<p>{e(section.text)}</p>")
        if section.facts:
            body.append("<dl>" + "".join(f"<dt>{e(name)}</dt><dd>{e(value)}</dd>" for name, value in section.facts) + "</dl>")
        body.extend(table_to_html(t) for t in section.tables)
        for figure in section.figures():
            if not figure.path.is_file():
                raise InputError(f"image for the report not found: {figure.path}")
            source = _image_source(figure.path, path.parent, embed_images)
            caption = f"<figcaption>{e(figure.caption)}</figcaption>" if figure.caption else ""
            body.append(f'<figure><img src="{e(source)}" alt="{e(figure.caption or figure.path.name)}">{caption}</figure>')
        if section.preformatted is not None:
            body.append(f"<pre>{e(section.preformatted)}</pre>")
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
    ])
    with atomic_path(path) as tmp:
        tmp.write_text(page + "\n", encoding="utf-8")
    return path
