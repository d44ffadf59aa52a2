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
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the page: a heading, then optional paragraph, tables, images and preformatted text.

    Args:
        title: the section's heading.
        text: a paragraph under the heading, or None.
        tables: tables rendered as ``<table>`` (each with its title as caption).
        images: image files (PNG, JPEG, WebP, GIF), referenced by relative path or embedded.
        preformatted: text shown verbatim in a ``<pre>`` block (e.g. the configuration), or None.
    """

    title: str
    text: str | None = None
    tables: Sequence[Table] = field(default_factory=tuple)
    images: Sequence[Path] = field(default_factory=tuple)
    preformatted: str | None = None


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
        body.extend(table_to_html(t) for t in section.tables)
        for image in map(Path, section.images):
            if not image.is_file():
                raise InputError(f"image for the report not found: {image}")
            source = _image_source(image, path.parent, embed_images)
            body.append(f'<img src="{e(source)}" alt="{e(image.name)}">')
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
