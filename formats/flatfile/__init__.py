"""Bank flat files: declarative layouts (:mod:`.layout`), a streaming reader and writer, result files.

The modules, one job each: :mod:`.layout` (the layout model and its strict loader), :mod:`.fields`
(one field's value <-> bytes), :mod:`.records` (model <-> field values, result-file models),
:mod:`.writer` (instruction and result files out), :mod:`.reader` (any flat file in).
"""

from formats.flatfile.layout import FieldSpec, FileLayout, FileSpec, LayoutError, RecordSpec, layout_from_mapping
from formats.flatfile.reader import FlatContents, FlatReader, check_flat, open_flat, read_flat
from formats.flatfile.records import ResultFileHeader, ResultRow
from formats.flatfile.writer import WriteResult, write_flat, write_results

__all__ = [
    "FieldSpec", "FileLayout", "FileSpec", "LayoutError", "RecordSpec", "layout_from_mapping",
    "FlatContents", "FlatReader", "check_flat", "open_flat", "read_flat",
    "ResultFileHeader", "ResultRow", "WriteResult", "write_flat", "write_results",
]
