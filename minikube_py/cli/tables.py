"""kubectl's table output: the header, rows and alignment of `get`, `events` and `describe`.

Users read our tables with kubectl habits. The columns and cell values come from
`api.printers`, the same server-side printers the API server answers kubectl's Table requests
with, so `minikube-py get` and `kubectl get` print the same cells; this module picks the
visible columns (wide or not), upper-cases their names as kubectl does and aligns them with
Go's `text/tabwriter` algorithm, so a column block ends where a line has fewer cells, exactly
as in kubectl's output. Everything here works on wire dicts and takes `now` as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minikube_py.api import printers
# The cell computations live in api.printers (the API server's Table uses them too); these
# names stay importable from here for the CLI's other printers.
from minikube_py.api.printers import (  # noqa: F401
    NONE,
    age,
    event_last_seen_time,
    format_label_selector,
    format_labels,
    node_roles,
    pod_summary,
)

# cli-runtime `printers/tabwriter.go`: minwidth 6, padding 3, widths remembered across flushes.
GET_MIN_WIDTH = 6
GET_PADDING = 3
# kubectl describe's `tabbedString`: minwidth 0, padding 2.
DESCRIBE_PADDING = 2


def align_columns(text: str, min_width: int = 0, padding: int = DESCRIBE_PADDING,
                  remembered_widths: list[int] | None = None) -> str:
    """Go's `text/tabwriter`: tab-terminated cells of consecutive lines form aligned columns.

    A column block is a run of consecutive lines that all have a tab-terminated cell in that
    column; a line with fewer cells ends the block (so `Containers:` in `describe` starts a new
    alignment). The last cell of a line is never padded. `remembered_widths` plays the
    `RememberWidths` flag: widths only grow, which keeps `get -w` rows under their header.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    output: list[str] = []
    widths: list[int] = []

    def write_lines(first: int, last: int) -> None:
        for line in lines[first:last]:
            pieces = []
            for column, cell in enumerate(line):
                if column < len(line) - 1 and column < len(widths):
                    pieces.append(cell.ljust(widths[column]))
                else:
                    pieces.append(cell)
            output.append("".join(pieces))

    def format_block(first: int, last: int) -> None:
        column = len(widths)
        line_index = first
        while line_index < last:
            if column >= len(lines[line_index]) - 1:
                line_index += 1
                continue
            write_lines(first, line_index)
            first = line_index
            width = min_width
            while line_index < last and column < len(lines[line_index]) - 1:
                width = max(width, len(lines[line_index][column]) + padding)
                line_index += 1
            if remembered_widths is not None:
                if column < len(remembered_widths):
                    width = max(width, remembered_widths[column])
                    remembered_widths[column] = width
                else:
                    remembered_widths.append(width)
            widths.append(width)
            format_block(first, line_index)
            widths.pop()
            first = line_index
        write_lines(first, last)

    format_block(0, len(lines))
    return "\n".join(output)


@dataclass
class Table:
    """Header plus rows of cells, rendered like kubectl's `get` printer."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def render(self, with_header: bool = True, remembered_widths: list[int] | None = None) -> str:
        lines = ([self.header] if with_header else []) + self.rows
        text = "\n".join("\t".join(cells) for cells in lines)
        return align_columns(text, GET_MIN_WIDTH, GET_PADDING, remembered_widths)


def _text(cell: printers.Cell) -> str:
    return cell if isinstance(cell, str) else str(cell)


def cells(plural: str, obj: dict, now: float, wide: bool) -> list[str]:
    """The cells `get` shows for one object, as text; a leading NAME column is left to `row_for`."""
    printer = printers.PRINTERS[plural]
    row = printer.row(obj, now)
    visible = printer.visible(wide)
    if printer.name_index() == 0:
        visible = visible[1:]
    return [_text(row[index]) for index in visible]


def header_for(plural: str, wide: bool) -> list[str]:
    """Column titles as kubectl prints a server Table's: upper-cased, wide-only ones with `-o wide`.
    Events put NAME last, and only in wide form, like kubectl."""
    columns = printers.PRINTERS[plural].columns
    return [columns[index].name.upper() for index in printers.PRINTERS[plural].visible(wide)]


def row_for(plural: str, obj: dict, now: float, wide: bool, name: str) -> list[str]:
    """One row of `get`; `name` (maybe `pod/web`) fills a leading NAME column, keeping what the
    printer adds after the name, as kubectl shows the server's cell (`local-path (default)`)."""
    printer = printers.PRINTERS[plural]
    if printer.name_index() != 0:
        return cells(plural, obj, now, wide)
    row = printer.row(obj, now)
    shown, own_name = _text(row[0]), str(obj["metadata"]["name"])
    if shown != own_name and shown.startswith(own_name) and name.endswith(own_name):
        name = name[:len(name) - len(own_name)] + shown
    return [name] + [_text(row[index]) for index in printer.visible(wide)[1:]]

