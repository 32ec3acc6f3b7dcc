"""XLSX without a spreadsheet library: SpreadsheetML written straight into streamed zip entries.

openpyxl's write-only mode produced the same cells 20–30× slower (about 4 ms per 1,000 cells, a minute
and more for a year of rows), so the sheet XML is written here: inline strings, numbers as numbers, dates
as serial numbers with a ``yyyy-mm-dd`` style, the header row frozen. The rows come as Arrow tables and
their XML is joined a column at a time by Arrow's string kernels (a year of rows is 3 GB of XML), deflated
by ISA-L. openpyxl reads the files back in the tests. A sheet holds at most Excel's 1,048,576 rows;
more continue on the next sheet, header repeated. An inline string is never evaluated as a formula; text
cells still get CSV's leading ``'`` before ``=``, ``+``, ``-``, ``@``, tab or CR, so that editing a cell
or saving the sheet as CSV cannot arm it. Characters XML cannot carry are dropped and text is cut at
Excel's 32,767 characters.

Spend is a number cell whose ``<v>`` is the exact decimal Postgres printed (``569.79904768``, never a
double's ``569.7990476800001``), so the file holds it exactly, as CSV and JSON do; a spreadsheet keeps
numbers as doubles (Excel shows 15 significant digits), which is what lets it sum the column. No text
``spend_exact`` column as in Parquet: it would not sum, and the number cell already carries the exact text.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from datetime import date
from typing import IO, Any
from xml.sax.saxutils import escape

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from isal import isal_zlib

from usage_gateway.datasources.exports.columns import Column, Kind, is_json_number, neutralise

XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL_CHARS = 32_767

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN_NS}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_ROOT_RELS = (
    f'{_XML}<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" Type="{_REL_NS}/officeDocument"'
    ' Target="xl/workbook.xml"/></Relationships>'
)
_SHEET_HEAD = (
    f'{_XML}<worksheet xmlns="{_MAIN_NS}"><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
    "<sheetData>"
)
_SHEET_TAIL = "</sheetData></worksheet>"
# Characters XML 1.0 cannot carry at all (C0 controls but tab, LF, CR; U+FFFE/U+FFFF; lone surrogates).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_NEEDS_WORK = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# A raw CR would come back as LF (XML end-of-line normalisation); as a reference it survives.
_XML_ENTITIES = {"\r": "&#13;"}
_EXCEL_EPOCH = date(1899, 12, 30).toordinal()
_UNIX_EPOCH_SERIAL = date(1970, 1, 1).toordinal() - _EXCEL_EPOCH  # date32 counts days from 1970-01-01
# Values the kernels leave to cell_xml (RE2 syntax): text that is empty, starts like a formula, starts or
# ends with what str.isspace() calls space, or holds what _xml_text escapes or drops; spend that does not
# end with a digit (NaN, Infinity).
_SPACE = r"[\t-\r\x1c-\x20\x85\pZ]"
_ODD = {
    Kind.TEXT: rf"^$|^[=+\-@]|^{_SPACE}|{_SPACE}$|[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\x{{fffe}}\x{{ffff}}]",
    Kind.DECIMAL: r"[^0-9]$|^$",
}
# What surrounds a value in the kernels' cells: after the reference, and after the value.
_CELL_AROUND = {
    Kind.DATE: ('" s="1"><v>', "</v></c>"),
    Kind.INT: ('"><v>', "</v></c>"),
    Kind.DECIMAL: ('"><v>', "</v></c>"),
    Kind.TEXT: ('" t="inlineStr"><is><t>', "</t></is></c>"),
}
_DEFLATE_LEVEL = 1
_ENTRY_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same rows give the same bytes


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _xml_text(value: str) -> str:
    """``value`` as the ``<t>`` element of an inline string."""
    if (
        value
        and len(value) <= XLSX_MAX_CELL_CHARS
        and not value[0].isspace()
        and not value[-1].isspace()
        and _NEEDS_WORK.search(value) is None
    ):
        return f"<t>{value}</t>"
    text = escape(_NOT_XML.sub("", value)[:XLSX_MAX_CELL_CHARS], _XML_ENTITIES)
    return f'<t xml:space="preserve">{text}</t>'


def _inline_string(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is>{_xml_text(value)}</is></c>'


def cell_xml(ref: str, kind: Kind, value: Any) -> str:
    """One cell, ``""`` for NULL: what :func:`rows_xml` writes for every value, one at a time."""
    if value is None:
        return ""
    if kind is Kind.TEXT:
        return _inline_string(ref, neutralise(value))
    if kind is Kind.INT or (kind is Kind.DECIMAL and is_json_number(value)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if kind is Kind.DATE:
        return f'<c r="{ref}" s="1"><v>{value.toordinal() - _EXCEL_EPOCH}</v></c>'
    return _inline_string(ref, value)


def rows_xml(table: Any, first: int, kinds: Sequence[Kind]) -> memoryview:
    """The ``<row>`` elements of an Arrow table, numbered from ``first``, joined by Arrow's kernels; the
    cells they do not cover (text needing escapes, a formula's ``'``, spend that is not a number) from
    :func:`cell_xml`."""
    numbers = pc.cast(pa.array(range(first, first + table.num_rows), pa.int64()), pa.string())
    parts: list[Any] = ['<row r="', numbers, '">']
    for i, kind in enumerate(kinds):
        column = table.column(i)
        values = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        letter = _column_letters(i)
        if kind is Kind.DATE:
            text = pc.cast(pc.add(pc.cast(values, pa.int32()), _UNIX_EPOCH_SERIAL), pa.string())
        else:
            text = values if kind is not Kind.INT else pc.cast(values, pa.string())
        opening, closing = _CELL_AROUND[kind]
        cell = [f'<c r="{letter}', numbers, opening, text, closing]
        odd = _odd(kind, values)
        if odd is None and not values.null_count:
            parts += cell  # joined with the row's other parts, in one pass
            continue
        joined = pc.binary_join_element_wise(*cell, "")
        if odd is not None:
            where = pc.indices_nonzero(odd)
            refs, odd_values = pc.take(numbers, where).to_pylist(), pc.take(values, where).to_pylist()
            fixed = [cell_xml(f"{letter}{n}", kind, v) for n, v in zip(refs, odd_values, strict=True)]
            joined = pc.replace_with_mask(joined, odd, pa.array(fixed, pa.string()))
        parts.append(pc.fill_null(joined, ""))  # a NULL is no cell
    parts.append("</row>")
    rows = pc.binary_join_element_wise(*_merged(parts), "")
    _, offsets, data = rows.buffers()
    ends = memoryview(offsets).cast("i")
    return memoryview(data)[ends[rows.offset] : ends[rows.offset + len(rows)]]


def _merged(parts: list[Any]) -> list[Any]:
    """``parts`` with neighbouring strings made one."""
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _odd(kind: Kind, values: Any) -> Any:
    """Where ``values`` need :func:`cell_xml` (a boolean array), or None if nowhere."""
    pattern = _ODD.get(kind)
    if pattern is None:
        return None
    odd = pc.match_substring_regex(values, pattern)
    if kind is Kind.TEXT:
        odd = pc.or_(odd, pc.greater(pc.utf8_length(values), XLSX_MAX_CELL_CHARS))
    odd = pc.fill_null(odd, False)
    return odd if pc.any(odd).as_py() else None


def _deflate_with_isal(entry: IO[bytes]) -> None:
    """Have a zip entry being written deflate with ISA-L: zipfile offers no choice of deflater, and zlib's
    takes 30 s for the 3 GB of sheet XML of a year of rows, ISA-L's 7 s (same level, smaller output).
    zipfile's writer only calls ``compress`` and ``flush`` on its ``_compressor``."""
    if not hasattr(entry, "_compressor"):  # a zipfile of another make: leave it to zlib
        return
    entry._compressor = isal_zlib.compressobj(_DEFLATE_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)


class XlsxWriter:
    """Takes Arrow tables with a column per export column (see :mod:`~.tables`)."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column]) -> None:
        self._zip = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_DEFLATE_LEVEL)
        self._columns = list(columns)
        self._letters = [_column_letters(i) for i in range(len(columns))]
        self._kinds = [column.kind for column in columns]
        self._sheets = 0
        self._row = 0
        self._entry: IO[bytes] | None = None

    def _start_sheet(self) -> IO[bytes]:
        self._sheets += 1
        info = zipfile.ZipInfo(f"xl/worksheets/sheet{self._sheets}.xml", _ENTRY_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        entry = self._zip.open(info, "w", force_zip64=True)
        _deflate_with_isal(entry)
        header = "".join(
            _inline_string(f"{letter}1", column.name)
            for letter, column in zip(self._letters, self._columns, strict=True)
        )
        entry.write(f'{_SHEET_HEAD}<row r="1">{header}</row>'.encode())
        self._entry, self._row = entry, 1
        return entry

    def _end_sheet(self) -> None:
        if self._entry is not None:
            self._entry.write(_SHEET_TAIL.encode())
            self._entry.close()
            self._entry = None

    def write(self, table: Any) -> None:
        entry = self._entry or self._start_sheet()
        done = 0
        while done < table.num_rows:
            if self._row >= XLSX_MAX_ROWS:
                self._end_sheet()
                entry = self._start_sheet()
            part = table.slice(done, min(table.num_rows - done, XLSX_MAX_ROWS - self._row))
            entry.write(rows_xml(part, self._row + 1, self._kinds))
            self._row += part.num_rows
            done += part.num_rows

    def close(self) -> None:
        if self._entry is None:
            self._start_sheet()
        self._end_sheet()
        sheets = range(1, self._sheets + 1)
        names = ["usage" if n == 1 else f"usage {n}" for n in sheets]
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{_SHEET_TYPE}"/>' for n in sheets
        )
        parts = {
            "[Content_Types].xml": (
                f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels"'
                ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml"'
                ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml"'
                ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f"{overrides}</Types>"
            ),
            "_rels/.rels": _ROOT_RELS,
            "xl/workbook.xml": (
                f'{_XML}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheets>'
                + "".join(
                    f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>'
                    for n, name in zip(sheets, names, strict=True)
                )
                + "</sheets></workbook>"
            ),
            "xl/_rels/workbook.xml.rels": (
                f'{_XML}<Relationships xmlns="{_PKG_REL_NS}">'
                + "".join(
                    f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                    for n in sheets
                )
                + f'<Relationship Id="rId{self._sheets + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
                "</Relationships>"
            ),
            "xl/styles.xml": _STYLES,
        }
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, _ENTRY_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            self._zip.writestr(info, text)
        self._zip.close()

    def abort(self) -> None:
        if self._entry is not None:
            self._entry.close()
        self._zip.close()
