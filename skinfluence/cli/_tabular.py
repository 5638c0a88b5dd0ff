"""Reading a table for the command line: CSV text, Parquet files and DataFrames.

Every source becomes a :class:`Table`: a pandas DataFrame of the cells as
strings, exactly as written (so the output can pass them through), with the
separator and the decimal mark the numbers are written in.  Deciding what
each column means is :mod:`skinfluence.cli._columns`' job.

CSV files are parsed by :func:`pandas.read_csv` on the text (so every value
stays a string and no pandas type guessing happens); the separator is sniffed
among ``, ; tab |`` and the decimal mark guessed from the cells when not given
(``,`` in files like ``1,5;2,25;yes``).  Parquet files need pyarrow or
fastparquet, whichever is installed.
"""

import csv
import importlib.util
import io
import os
import re
import sys

import numpy as np

__all__ = ["DataError", "Table", "MISSING", "read_table", "read_csv", "read_parquet",
           "table_from_frame"]

# Cells treated as missing values.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})

PARQUET_SUFFIXES = (".parquet", ".pq")

# Cells that decide the decimal mark of a file whose separator is not a comma.
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
_POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class DataError(ValueError):
    """The input data cannot be used; the message says why and how to fix it."""


class Table:
    """A table held as strings.

    Attributes
    ----------
    path : str
        Where the table came from (a file name, ``"-"`` or a description).
    frame : pandas.DataFrame
        The cells as written, one string per cell (``""`` where a DataFrame
        held a missing value), with the column names as columns.
    header : list of str
        Column names.
    delimiter : str
        The field separator found in (or given for) the file; ``","`` for
        Parquet files and DataFrames.  Output files are written with it.
    decimal : str
        The decimal mark of its numbers, ``"."`` or ``","``.
    source : {"csv", "parquet", "frame"}
        What was read.
    guessed : dict
        How the dialect was settled: ``"delimiter"`` and ``"decimal"`` are True
        when guessed from the content rather than given.
    decimal_evidence : list of str
        Columns whose cells made the guess ``decimal=","`` (empty otherwise).
    decimal_conflict : tuple of (list of str, list of str) or None
        Columns written with decimal commas and columns written with decimal
        points, when a file has both and the guess fell back to ``"."``.
    """

    def __init__(self, path, frame, delimiter=",", decimal=".", source="csv"):
        self.path = path
        self.frame = frame
        self.header = [str(name) for name in frame.columns]
        self.delimiter = delimiter
        self.decimal = decimal
        self.source = source
        self.guessed = {"delimiter": False, "decimal": False}
        self.decimal_evidence = []
        self.decimal_conflict = None
        self._stripped = {}

    @property
    def n_rows(self):
        return len(self.frame)

    def column(self, name):
        """All cells of one column as an object array of stripped strings."""
        if name not in self._stripped:
            cells = self.frame[name].to_numpy(dtype=object)
            self._stripped[name] = np.array([c.strip() for c in cells], dtype=object)
        return self._stripped[name]

    def cell(self, i, name):
        """The cell of data row ``i`` in column ``name``, as written."""
        return self.frame[name].iat[i]

    def raw_rows(self, order=None):
        """Data rows (all rows, or those in ``order``) as lists of cells, as written."""
        cells = self.frame.to_numpy(dtype=object)
        if order is not None:
            cells = cells[np.asarray(order, dtype=np.intp)]
        return cells.tolist()


def short_list(names, limit=8):
    """``a, b, ... (3 more)``."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"


def rows_list(indices, limit=5):
    """``1, 4, 9, ... (3 more)``."""
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    if len(indices) > limit:
        shown += f", ... ({len(indices) - limit} more)"
    return shown


def read_table(path, delimiter=None, decimal=None):
    """Read a CSV or Parquet file into a :class:`Table`.

    Files named ``*.parquet`` or ``*.pq``, or starting with Parquet's magic
    bytes, are read with :func:`read_parquet` (``delimiter`` and ``decimal``
    then do not apply); anything else with :func:`read_csv`.
    """
    if path != "-" and (str(path).lower().endswith(PARQUET_SUFFIXES) or _is_parquet(path)):
        return read_parquet(path)
    return read_csv(path, delimiter=delimiter, decimal=decimal)


def _is_parquet(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False  # read_csv words the error


def _check_file(path, kind):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory, not a {kind} file.")


def read_parquet(path):
    """Read a Parquet file into a :class:`Table` (needs pyarrow or fastparquet).

    Numbers are written as Python prints them and missing values as empty
    cells, so the column rules are those of a CSV file with decimal points.
    """
    _check_file(path, "Parquet")
    engines = [m for m in ("pyarrow", "fastparquet") if importlib.util.find_spec(m)]
    if not engines:
        raise DataError(f"{path} is a Parquet file; reading it needs pyarrow or fastparquet: "
                        "pip install pyarrow.")
    import pandas as pd

    try:
        frame = pd.read_parquet(path, engine=engines[0])
    except Exception as exc:  # the engines raise their own error types
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None
    return table_from_frame(frame, path, source="parquet")


def table_from_frame(frame, path="DataFrame", source="frame"):
    """A :class:`Table` of a DataFrame's values written as strings.

    Missing values (None, NaN, NA, NaT) become empty cells; numbers are written
    as Python prints them, which reads back to the same float.  The index is
    not a column.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}.")
    names = [str(name).strip() for name in frame.columns]
    _check_header(names, path)
    if len(frame) == 0:
        raise DataError(f"{path} has columns but no data rows.")
    columns = {}
    for name, (_, series) in zip(names, frame.items()):
        values = series.to_numpy(dtype=object)
        missing = pd.isna(series).to_numpy()
        columns[name] = ["" if m else str(v) for v, m in zip(values, missing)]
    strings = pd.DataFrame(columns, columns=names, dtype=object)
    return Table(path, strings, ",", ".", source=source)


def _check_header(header, path):
    if any(name == "" for name in header):
        where = [i + 1 for i, name in enumerate(header) if name == ""]
        raise DataError(
            f"{path}: the header has an empty column name (column {rows_list(where)}); "
            "every column needs a name."
        )
    seen = set()
    dupes = [n for n in header if n in seen or seen.add(n)]
    if dupes:
        raise DataError(f"{path}: duplicate column names in the header: {', '.join(dupes)}.")


def _read_text(path):
    """The text of a CSV file (or of standard input for ``"-"``)."""
    if path == "-":
        return sys.stdin.read()
    _check_file(path, "CSV")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}).") from None
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path} looks like a binary file, not a CSV text file.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_csv(path, delimiter=None, decimal=None):
    """Read a CSV file into a :class:`Table`.

    Parameters
    ----------
    path : str
        File name; ``"-"`` reads standard input.
    delimiter : str or None, default=None
        Field separator; sniffed among ``, ; tab |`` when None.
    decimal : {".", ",", None}, default=None
        Decimal mark of the numbers.  When None it is ``","`` only if the
        separator is not a comma and some column holds numbers written with
        decimal commas (``0,2202``) and no column holds decimal points; a
        comma-separated file is always read with ``"."``.

    Returns
    -------
    table : Table

    Raises
    ------
    DataError
        If the file is missing, empty, not text, has no data rows, has
        duplicate or empty column names, or rows of the wrong length.
    """
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path} is empty.")
    if decimal not in (None, ".", ","):
        raise DataError(f"decimal mark must be '.' or ',', got {decimal!r}.")
    guessed_delimiter = delimiter is None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    frame = _parse_csv(text, path, delimiter)
    table = Table(path, frame, delimiter)
    table.guessed["delimiter"] = guessed_delimiter
    if decimal is None:
        table.guessed["decimal"] = True
        decimal, table.decimal_evidence, table.decimal_conflict = _guess_decimal(table)
    table.decimal = decimal
    return table


def _parse_csv(text, path, delimiter):
    """DataFrame of the strings of every record but the header; blank records dropped.

    A record is blank when all its cells are whitespace.  Records of the wrong
    length are an error naming the line.
    """
    import pandas as pd

    # Leading blank lines are not the header.
    lead = re.match(r"(?:[\s" + re.escape(delimiter) + r"]*(?:\r\n|\r|\n|\Z))*", text).end()

    def parse(on_bad_lines):
        return pd.read_csv(
            io.StringIO(text[lead:], newline=""), sep=delimiter, header=None, dtype=object,
            na_filter=False, keep_default_na=False, engine="python", index_col=False,
            skip_blank_lines=False, on_bad_lines=on_bad_lines,
        )

    try:
        frame = parse("error")
    except pd.errors.EmptyDataError:  # nothing but separators and blanks
        raise DataError(f"{path} is empty.") from None
    except (pd.errors.ParserError, csv.Error):
        error = _record_error(text, path, delimiter)
        if error is not None:
            raise error from None
        # Only blank records (",,,") were too long: read again, dropping them.
        frame = parse(lambda fields: [""])
    cells = frame.to_numpy(dtype=object)
    header = [h.strip() for h in cells[0]]
    _check_header(header, path)
    padded = pd.isna(frame).to_numpy()  # short records are padded with NaN
    blank = np.zeros(len(cells), dtype=bool)
    # a record is blank only if its first cell is (a cheap test of every record first)
    for i in np.flatnonzero([padded[i, 0] or not c.strip() for i, c in enumerate(cells[:, 0])]):
        blank[i] = all(c.strip() == "" for c in cells[i] if isinstance(c, str))
    if padded[~blank].any():
        raise _record_error(text, path, delimiter) or DataError(f"{path}: not a valid CSV file.")
    keep = np.flatnonzero(~blank[1:]) + 1
    if len(keep) == 0:
        raise DataError(f"{path} has a header but no data rows.")
    data = pd.DataFrame(cells[keep], columns=header, dtype=object)
    return data.reset_index(drop=True)


def _record_error(text, path, delimiter):
    """The DataError for the first record of the wrong length or with a stray quote.

    pandas' Python parser is the standard library's strict CSV reader, so
    running that reader again finds the line where pandas stopped.  None when
    every record that is not blank is fine.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    n_columns = None
    try:
        for record in reader:
            if not any(c.strip() for c in record):
                continue
            if n_columns is None:
                _check_header([c.strip() for c in record], path)
                n_columns = len(record)
            elif len(record) != n_columns:
                return DataError(
                    f"{path}, line {reader.line_num}: {len(record)} fields but the header "
                    f"has {n_columns} columns (delimiter {delimiter!r})."
                )
    except csv.Error as exc:
        hint = ("a quote is not closed" if "end of data" in str(exc) else
                f"a quote must enclose a whole field (is {delimiter!r} the separator?)")
        return DataError(f"{path}, line {reader.line_num}: not a valid CSV file ({exc}); "
                         f"{hint}.")
    return None


def _guess_decimal(table, max_junk_fraction=0.25):
    """Decimal mark of ``table``'s numbers: ``(mark, evidence, conflict)``.

    A comma is the decimal mark only in a file not separated by commas whose
    header has no comma (so a comma-separated file read with the wrong
    separator does not qualify), where some column holds numbers like
    ``-0,25`` (and maybe integers) and no column holds numbers like ``0.25``.
    A column qualifies with up to ``max_junk_fraction`` of other cells, as in
    :func:`~skinfluence.cli._columns.infer_columns`, so that a stray ``3.5``
    among ``0,25`` cells is reported as junk rather than turning the whole
    file to decimal points.
    """
    if table.delimiter == "," or any("," in name for name in table.header):
        return ".", [], None
    commas, points = [], []
    for name in table.header:
        cells = [c for c in table.column(name) if c.lower() not in MISSING]
        enough = (1.0 - max_junk_fraction) * len(cells)
        n_int = sum(bool(_INTEGER.fullmatch(c)) for c in cells)
        n_comma = sum(bool(_COMMA_DECIMAL.fullmatch(c)) for c in cells)
        n_point = sum(bool(_POINT_DECIMAL.fullmatch(c)) for c in cells)
        if n_comma and n_comma + n_int >= enough:
            commas.append(name)
        if n_point and n_point + n_int >= enough:
            points.append(name)
    if commas and not points:
        return ",", commas, None
    return ".", [], (commas, points) if commas else None
