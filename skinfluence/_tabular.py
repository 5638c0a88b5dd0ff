"""From a CSV file to a feature matrix: column typing, identifier detection, preprocessing.

Used by the command line.  Works with the standard library's :mod:`csv`
module only, so the command line needs no pandas.

The steps are:

1. :func:`read_csv` reads the file into a header and a list of string rows,
   with clear errors for a missing or empty file, ragged rows and encodings,
   and settles the separator and the decimal mark (``,`` in files like
   ``1,5;2,25;yes``).
2. :func:`infer_columns` decides for every column whether it is the target,
   a numeric feature, a categorical feature or an identifier (kept in the
   output, never used as a feature).  A column that is numeric except for a
   few stray strings is an error, not a silent category.
3. :func:`make_preprocessor` builds a :class:`~sklearn.compose.ColumnTransformer`
   (imputation + scaling for numbers, imputation + one-hot for categories)
   whose output is a dense float64 matrix.
"""

import csv
import difflib
import io
import math
import os
import re

import numpy as np

__all__ = [
    "DataError",
    "Table",
    "ColumnPlan",
    "read_csv",
    "infer_columns",
    "make_preprocessor",
    "load_table",
]

# Cells treated as missing values.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})

# A string column with at least this many rows whose values are all distinct is an identifier.
_MIN_ROWS_FOR_ID = 5

# Cells that decide the decimal mark of a file whose separator is not a comma.
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
_POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class DataError(ValueError):
    """The input data cannot be used; the message says why and how to fix it."""


class Table:
    """A CSV file held as strings.

    Attributes
    ----------
    path : str
        Where the table came from.
    header : list of str
        Column names.
    rows : list of list of str
        Data rows (header excluded), each as long as ``header``.
    delimiter : str
        The field separator found in (or given for) the file.
    decimal : str
        The decimal mark of its numbers, ``"."`` or ``","``.
    guessed : dict
        How the dialect was settled: ``"delimiter"`` and ``"decimal"`` are True
        when guessed from the content rather than given.
    decimal_evidence : list of str
        Columns whose cells made the guess ``decimal=","`` (empty otherwise).
    decimal_conflict : tuple of (list of str, list of str)
        Columns written with decimal commas and columns written with decimal
        points, when a file has both and the guess fell back to ``"."``.
    """

    def __init__(self, path, header, rows, delimiter=",", decimal="."):
        self.path = path
        self.header = header
        self.rows = rows
        self.delimiter = delimiter
        self.decimal = decimal
        self.guessed = {"delimiter": False, "decimal": False}
        self.decimal_evidence = []
        self.decimal_conflict = None

    @property
    def n_rows(self):
        return len(self.rows)

    def column(self, name):
        """All cells of one column as an object array of stripped strings."""
        j = self.header.index(name)
        return np.array([row[j].strip() for row in self.rows], dtype=object)


class ColumnPlan:
    """What each column is used for.

    Attributes
    ----------
    target : str
    numeric, categorical, identifiers, constant : list of str
        Feature columns by type; identifier and constant columns are not features.
    reasons : dict
        Column name -> short human-readable reason it is not a feature.
    """

    def __init__(self, target):
        self.target = target
        self.preprocessor = None  # fitted ColumnTransformer, set by load_table
        self.numeric = []
        self.categorical = []
        self.identifiers = []
        self.constant = []
        self.reasons = {}

    @property
    def features(self):
        return self.numeric + self.categorical

    def describe(self):
        """Multi-line summary for the command line."""
        lines = [f"target: {self.target}"]
        if self.numeric:
            lines.append(f"numeric features ({len(self.numeric)}): " + _short_list(self.numeric))
        if self.categorical:
            lines.append(
                f"categorical features ({len(self.categorical)}): "
                + _short_list(self.categorical)
            )
        for name in self.identifiers + self.constant:
            lines.append(f"not used as a feature: {name} ({self.reasons[name]})")
        return "\n".join(lines)


def _short_list(names, limit=8):
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"


def _rows_list(indices, limit=5):
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    if len(indices) > limit:
        shown += f", ... ({len(indices) - limit} more)"
    return shown


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
    if path == "-":
        import sys

        text = sys.stdin.read()
    else:
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file.")
        if os.path.isdir(path):
            raise DataError(f"{path} is a directory, not a CSV file.")
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot be read ({exc.strerror}).") from None
        if b"\x00" in raw[:4096]:
            raise DataError(f"{path} looks like a binary file, not a CSV text file.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = [(reader.line_num, rec) for rec in reader if any(c.strip() for c in rec)]
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file ({exc}).") from None
    header = [h.strip() for h in records[0][1]]
    if any(name == "" for name in header):
        where = [i + 1 for i, name in enumerate(header) if name == ""]
        raise DataError(
            f"{path}: the header has an empty column name (column {_rows_list(where)}); "
            "every column needs a name."
        )
    seen = set()
    dupes = [n for n in header if n in seen or seen.add(n)]
    if dupes:
        raise DataError(f"{path}: duplicate column names in the header: {', '.join(dupes)}.")
    rows = []
    for line_num, rec in records[1:]:
        if len(rec) != len(header):
            raise DataError(
                f"{path}, line {line_num}: {len(rec)} fields but the header has "
                f"{len(header)} columns (delimiter {delimiter!r})."
            )
        rows.append(rec)
    if not rows:
        raise DataError(f"{path} has a header but no data rows.")
    table = Table(path, header, rows, delimiter)
    table.guessed["delimiter"] = guessed_delimiter
    if decimal is None:
        table.guessed["decimal"] = True
        decimal, table.decimal_evidence, table.decimal_conflict = _guess_decimal(table)
    table.decimal = decimal
    return table


def _guess_decimal(table, max_junk_fraction=0.25):
    """Decimal mark of ``table``'s numbers: ``(mark, evidence, conflict)``.

    A comma is the decimal mark only in a file not separated by commas whose
    header has no comma (so a comma-separated file read with the wrong
    separator does not qualify), where some column holds numbers like
    ``-0,25`` (and maybe integers) and no column holds numbers like ``0.25``.
    A column qualifies with up to ``max_junk_fraction`` of other cells, as in
    :func:`infer_columns`, so that a stray ``3.5`` among ``0,25`` cells is
    reported as junk rather than turning the whole file to decimal points.
    """
    if table.delimiter == "," or any("," in name for name in table.header):
        return ".", [], None
    commas, points = [], []
    for j, name in enumerate(table.header):
        cells = [row[j].strip() for row in table.rows]
        cells = [c for c in cells if c.lower() not in MISSING]
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


def _parse_floats(cells, decimal="."):
    """Floats for the cells (NaN where missing) and the positions of unparseable cells.

    With ``decimal=","`` a cell holding a point is unparseable: the point
    could group thousands.
    """
    values = np.full(len(cells), np.nan)
    bad = []
    for i, cell in enumerate(cells):
        if cell.lower() in MISSING:
            continue
        if decimal == ",":
            if "." in cell:
                bad.append(i)
                continue
            cell = cell.replace(",", ".")
        try:
            v = float(cell)
        except ValueError:
            bad.append(i)
            continue
        if math.isinf(v):
            bad.append(i)
            continue
        values[i] = v
    return values, np.asarray(bad, dtype=np.intp)


def _is_missing(cells):
    return np.array([c.lower() in MISSING for c in cells], dtype=bool)


def _looks_like_row_counter(values):
    """Integer column counting rows (0..n-1, 1..n or any strictly increasing integers)."""
    if np.isnan(values).any() or len(values) < _MIN_ROWS_FOR_ID:
        return False
    if not np.all(values == np.round(values)):
        return False
    return bool(np.all(np.diff(values) > 0))


def _name_says_id(name):
    low = name.lower()
    return low in {"id", "index", "key", "uuid", "guid", "row", "rowid", "row_id"} or (
        low.endswith("_id") or low.endswith(" id") or low.endswith("-id")
    )


def infer_columns(
    table, target, *, id_columns=(), categorical=(), numeric=(), ignore=(),
    max_junk_fraction=0.25,
):
    """Decide the role of every column of ``table``.

    Parameters
    ----------
    table : Table
    target : str
        Name of the label column.
    id_columns : sequence of str
        Columns to pass through without using them as features.
    categorical : sequence of str
        Columns to treat as categorical even if they hold numbers.
    numeric : sequence of str
        Columns to use as numeric features even if they look like identifiers.
    ignore : sequence of str
        Columns not to use as features (kept in the output).
    max_junk_fraction : float
        A column where at most this fraction of the non-missing cells fails to
        parse as a number is taken to be a numeric column with junk in it, which
        is an error.  Above it the column is categorical (or an identifier).

    Returns
    -------
    plan : ColumnPlan

    Raises
    ------
    DataError
        For unknown column names, a target column with missing values, and
        numeric columns polluted by non-numeric values.
    """
    header = table.header
    for option, names in (
        ("--target", [target]),
        ("--id-columns", id_columns),
        ("--categorical", categorical),
        ("--numeric", numeric),
        ("--ignore", ignore),
    ):
        for name in names:
            if name not in header:
                close = difflib.get_close_matches(name, header, n=1, cutoff=0.6)
                close = close or [h for h in header if h.lower() == name.lower()]
                hint = f" Did you mean {close[0]!r}?" if close else ""
                if len(header) == 1:
                    hint += (f" The header was read as a single column: if the fields are not "
                             f"separated by {table.delimiter!r}, pass --delimiter.")
                raise DataError(
                    f"{option}: no column named {name!r} in {table.path}.{hint} "
                    f"Columns are: {', '.join(header)}."
                )
    if len(header) < 2:
        raise DataError(
            f"{table.path} has a single column ({header[0]!r}); it needs at least one "
            "feature column besides the target (if the fields are separated by something "
            f"other than {table.delimiter!r}, pass --delimiter)."
        )
    plan = ColumnPlan(target)
    n = table.n_rows
    for name in header:
        if name == target:
            continue
        cells = table.column(name)
        missing = _is_missing(cells)
        present = cells[~missing]
        if name in id_columns:
            plan.identifiers.append(name)
            plan.reasons[name] = "given as --id-columns"
            continue
        if name in ignore:
            plan.identifiers.append(name)
            plan.reasons[name] = "given as --ignore"
            continue
        if len(set(present.tolist())) <= 1:
            plan.constant.append(name)
            plan.reasons[name] = "empty" if len(present) == 0 else "the same value in every row"
            continue
        if name in categorical:
            plan.categorical.append(name)
            continue
        values, bad = _parse_floats(cells, table.decimal)
        n_present = len(present)
        if name in numeric and len(bad) == 0:
            plan.numeric.append(name)
            continue
        if len(bad) == 0:
            if (_name_says_id(name) and len(np.unique(values)) == n) or _looks_like_row_counter(
                values
            ):
                plan.identifiers.append(name)
                plan.reasons[name] = "identifier: distinct increasing integers"
            else:
                plan.numeric.append(name)
            continue
        if len(bad) <= max_junk_fraction * n_present:
            examples = sorted({cells[i] for i in bad[:50]})[:3]
            other = "." if table.decimal == "," else ","
            hint = (f" Numbers are read with the decimal mark {table.decimal!r} (--decimal "
                    "sets it)." if any(other in e for e in examples) else "")
            raise DataError(
                f"column {name!r} holds numbers except for {len(bad)} cell(s) such as "
                + ", ".join(repr(e) for e in examples)
                + f" (data rows {_rows_list(bad)}, counting from 0).{hint} Fix or blank "
                f"those cells, or pass --categorical {name} to treat the column as categories."
            )
        n_unique = len(set(present.tolist()))
        if n_unique == n_present and n_present >= _MIN_ROWS_FOR_ID:
            plan.identifiers.append(name)
            plan.reasons[name] = "identifier: a different text in every row"
        else:
            plan.categorical.append(name)
    if not plan.features:
        raise DataError(
            f"no usable feature columns in {table.path}: "
            + "; ".join(f"{k} is {v}" for k, v in plan.reasons.items())
            + "."
        )
    return plan


def target_values(table, plan, *, task="classification", check_classes=True):
    """The target column, validated.

    Returns an object array of label strings for classification (numbers are
    normalised so that ``1`` and ``1.0`` are the same class) or a float array
    for regression.
    """
    cells = table.column(plan.target)
    missing = np.flatnonzero(_is_missing(cells))
    if len(missing):
        raise DataError(
            f"target column {plan.target!r} is empty in {len(missing)} row(s) "
            f"(data rows {_rows_list(missing)}, counting from 0); every row needs a label."
        )
    if task == "regression":
        values, bad = _parse_floats(cells, table.decimal)
        if len(bad):
            raise DataError(
                f"target column {plan.target!r} must hold numbers for a regression model, "
                f"but has {len(bad)} non-numeric cell(s) such as {cells[bad[0]]!r} "
                f"(data rows {_rows_list(bad)})."
            )
        return values
    values, bad = _parse_floats(cells, table.decimal)
    if len(bad) == 0 and np.all(values == np.round(values)):
        # integral numbers: "1", "1.0" and "01" are the same class
        labels = np.array([str(int(v)) for v in values], dtype=object)
    else:
        labels = cells
    if not check_classes:
        return labels
    classes, counts = np.unique(labels.astype(str), return_counts=True)
    if len(classes) < 2:
        raise DataError(
            f"target column {plan.target!r} has a single class ({str(classes[0])!r}); "
            "a classifier needs at least two."
        )
    if len(classes) > max(50, table.n_rows // 2):
        raise DataError(
            f"target column {plan.target!r} has {len(classes)} distinct values in "
            f"{table.n_rows} rows; that looks like an identifier or a continuous quantity, "
            "not class labels (for a numeric target, `explain` and `value` take --regression)."
        )
    return labels


def feature_matrix(table, plan):
    """Object array ``(n_rows, n_features)``: floats (NaN if missing) and category strings."""
    n = table.n_rows
    X = np.empty((n, len(plan.features)), dtype=object)
    for j, name in enumerate(plan.numeric):
        X[:, j] = _parse_floats(table.column(name), table.decimal)[0]
    offset = len(plan.numeric)
    for j, name in enumerate(plan.categorical):
        cells = table.column(name)
        cells = np.where(_is_missing(cells), "(missing)", cells)
        X[:, offset + j] = cells
    return X


def make_preprocessor(plan):
    """Unfitted ColumnTransformer for :func:`feature_matrix` output -> dense float64."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n_num = len(plan.numeric)
    n_cat = len(plan.categorical)
    transformers = []
    if n_num:
        transformers.append(
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(range(n_num)),
            )
        )
    if n_cat:
        transformers.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64),
                list(range(n_num, n_num + n_cat)),
            )
        )
    return ColumnTransformer(transformers, sparse_threshold=0.0)


def load_table(
    path,
    target,
    *,
    task="classification",
    delimiter=None,
    decimal=None,
    id_columns=(),
    categorical=(),
    numeric=(),
    ignore=(),
):
    """Read a CSV and turn it into features and labels.

    ``delimiter`` and ``decimal`` are passed to :func:`read_csv` (None: guessed).

    Returns
    -------
    table : Table
    plan : ColumnPlan
    X : ndarray of shape (n_rows, n_features), float64
        Preprocessed (imputed, scaled, one-hot) features.
    y : ndarray of shape (n_rows,)
        Labels (object array of strings) or float targets for regression.
    notes : list of str
        Things the user should know (imputed values, dropped columns).
    """
    table = read_csv(path, delimiter=delimiter, decimal=decimal)
    plan = infer_columns(
        table, target, id_columns=id_columns, categorical=categorical, numeric=numeric,
        ignore=ignore,
    )
    y = target_values(table, plan, task=task)
    raw = feature_matrix(table, plan)
    notes = []
    if table.decimal_conflict:
        commas, points = table.decimal_conflict
        notes.append(
            f"column(s) {_short_list(commas, 4)} hold numbers with decimal commas but "
            f"{_short_list(points, 4)} use decimal points; numbers were read with '.', so the "
            "former are not numeric (pass --decimal , if commas are the decimal mark)."
        )
    n_missing = 0
    cols_missing = 0
    for name in plan.features:
        k = int(_is_missing(table.column(name)).sum())
        n_missing += k
        cols_missing += k > 0
    if n_missing:
        notes.append(
            f"{n_missing} missing value(s) in {cols_missing} feature column(s) were filled "
            "in (median for numbers, a '(missing)' category for text)."
        )
    pre = make_preprocessor(plan)
    X = np.ascontiguousarray(pre.fit_transform(raw), dtype=np.float64)
    plan.preprocessor = pre
    return table, plan, X, y, notes


def load_validation(path, plan, *, task="classification", delimiter=None, decimal=None):
    """Read a second CSV with the same columns and map it with the fitted preprocessing.

    Parameters
    ----------
    path : str
    plan : ColumnPlan
        As returned by :func:`load_table` (holds the fitted ``preprocessor``).
    delimiter, decimal : str or None
        As for :func:`read_csv` (None: guessed from this file).

    Returns
    -------
    table : Table
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    """
    table = read_csv(path, delimiter=delimiter, decimal=decimal)
    missing = [c for c in plan.features + [plan.target] if c not in table.header]
    if missing:
        raise DataError(
            f"{path} lacks column(s) {', '.join(missing)} that the training data uses."
        )
    for name in plan.numeric:
        cells = table.column(name)
        bad = _parse_floats(cells, table.decimal)[1]
        if len(bad):
            raise DataError(
                f"{path}: column {name!r} should hold numbers but has {len(bad)} cell(s) such "
                f"as {cells[bad[0]]!r} (data rows {_rows_list(bad)})."
            )
    y = target_values(table, plan, task=task, check_classes=False)
    X = plan.preprocessor.transform(feature_matrix(table, plan))
    return table, np.ascontiguousarray(X, dtype=np.float64), y
