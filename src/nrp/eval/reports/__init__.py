"""Report writers of the evaluation harness: results.json/CSV, Table 1-style Markdown, plots, grids, HTML.

Records come from the protocol runner as :class:`Row` (classification) and :class:`CrossTaskRow`
(detection, segmentation) or as plain dicts with the same keys. Every file is written atomically. Plots need
the optional matplotlib (``pip install 'nrp-purifier[eval]'``).
"""

from nrp.eval.reports.grid import image_grid
from nrp.eval.reports.html import Section, table_to_html, write_html
from nrp.eval.reports.plots import MatplotlibMissingError, plot_accuracy_vs_eps, plot_accuracy_vs_iterations, plot_iterations
from nrp.eval.reports.report import write_report
from nrp.eval.reports.results import read_csv, read_results_json, write_csv, write_results_json
from nrp.eval.reports.rows import CrossTaskRow, Row, as_cross_task_rows, as_rows
from nrp.eval.reports.tables import (
    Table,
    classification_tables,
    cross_task_markdown,
    cross_task_table,
    markdown_table,
    write_markdown,
)

__all__ = [
    "CrossTaskRow",
    "MatplotlibMissingError",
    "Row",
    "Section",
    "Table",
    "as_cross_task_rows",
    "as_rows",
    "classification_tables",
    "cross_task_markdown",
    "cross_task_table",
    "image_grid",
    "markdown_table",
    "plot_accuracy_vs_eps",
    "plot_accuracy_vs_iterations",
    "plot_iterations",
    "read_csv",
    "read_results_json",
    "table_to_html",
    "write_csv",
    "write_html",
    "write_markdown",
    "write_report",
    "write_results_json",
]
