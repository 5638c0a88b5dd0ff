"""From a :class:`~skinfluence.cli._tabular.Table` to a feature matrix.

1. :func:`infer_columns` decides for every column whether it is the target,
   a numeric feature, a categorical feature or an identifier (kept in the
   output, never used as a feature).  A column that is numeric except for a
   few stray strings is an error, not a silent category.
2. :func:`infer_task` decides whether the target holds class labels or numbers to
   predict (regression), and :func:`target_values` checks and normalises it.
3. :func:`make_preprocessor` builds a :class:`~sklearn.compose.ColumnTransformer`
   (imputation + scaling for numbers, imputation + one-hot for categories)
   whose output is a dense float64 matrix.

:func:`load_table` does all of it for a file or a DataFrame.
"""

import difflib
import math

import numpy as np

from ._tabular import MISSING, DataError, read_table, rows_list, short_list, table_from_frame

__all__ = ["ColumnPlan", "infer_columns", "infer_task", "target_values", "feature_matrix",
           "make_preprocessor", "load_table", "load_validation"]

# A string column with at least this many rows whose values are all distinct is an identifier.
_MIN_ROWS_FOR_ID = 5
# A target of whole numbers with at most this many distinct values holds class labels.
MAX_CLASSES_AUTO = 20


class ColumnPlan:
    """What each column is used for.

    Attributes
    ----------
    target : str
    numeric, categorical, identifiers, constant : list of str
        Feature columns by type; identifier and constant columns are not features.
    reasons : dict
        Column name -> short human-readable reason it is not a feature.
    preprocessor : ColumnTransformer or None
        The fitted preprocessing, set by :func:`load_table`.
    task, task_reason : str or None
        ``"classification"`` or ``"regression"`` and why, set by :func:`load_table`.
    """

    def __init__(self, target):
        self.target = target
        self.preprocessor = None
        self.task = None
        self.task_reason = None
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
            lines.append(f"numeric features ({len(self.numeric)}): " + short_list(self.numeric))
        if self.categorical:
            lines.append(
                f"categorical features ({len(self.categorical)}): "
                + short_list(self.categorical)
            )
        for name in self.identifiers + self.constant:
            lines.append(f"not used as a feature: {name} ({self.reasons[name]})")
        return "\n".join(lines)


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


def _check_names(table, options):
    """Every column named in an option exists; else an error with a close match."""
    header = table.header
    for option, names in options:
        for name in names:
            if name in header:
                continue
            close = difflib.get_close_matches(name, header, n=1, cutoff=0.6)
            close = close or [h for h in header if h.lower() == name.lower()]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if len(header) == 1 and table.source == "csv":
                hint += (f" The header was read as a single column: if the fields are not "
                         f"separated by {table.delimiter!r}, pass --delimiter.")
            raise DataError(
                f"{option}: no column named {name!r} in {table.path}.{hint} "
                f"Columns are: {', '.join(header)}."
            )
    if len(header) < 2:
        hint = (" (if the fields are separated by something other than "
                f"{table.delimiter!r}, pass --delimiter)" if table.source == "csv" else "")
        raise DataError(
            f"{table.path} has a single column ({header[0]!r}); it needs at least one "
            f"feature column besides the target{hint}."
        )


def _junk_error(table, name, cells, bad):
    examples = sorted({cells[i] for i in bad[:50]})[:3]
    other = "." if table.decimal == "," else ","
    hint = (f" Numbers are read with the decimal mark {table.decimal!r} (--decimal "
            "sets it)." if any(other in e for e in examples) else "")
    return DataError(
        f"column {name!r} holds numbers except for {len(bad)} cell(s) such as "
        + ", ".join(repr(e) for e in examples)
        + f" (data rows {rows_list(bad)}, counting from 0).{hint} Fix or blank "
        f"those cells, or pass --categorical {name} to treat the column as categories."
    )


def _column_role(table, name, roles, max_junk_fraction):
    """``(role, reason)`` of one feature candidate; role is a ColumnPlan list name."""
    cells = table.column(name)
    present = cells[~_is_missing(cells)]
    if name in roles["id_columns"]:
        return "identifiers", "given as --id-columns"
    if name in roles["ignore"]:
        return "identifiers", "given as --ignore"
    if len(set(present.tolist())) <= 1:
        return "constant", "empty" if len(present) == 0 else "the same value in every row"
    if name in roles["categorical"]:
        return "categorical", None
    values, bad = _parse_floats(cells, table.decimal)
    if len(bad) == 0:
        if name in roles["numeric"]:
            return "numeric", None
        if (_name_says_id(name) and len(np.unique(values)) == table.n_rows) or (
            _looks_like_row_counter(values)
        ):
            return "identifiers", "identifier: distinct increasing integers"
        return "numeric", None
    if len(bad) <= max_junk_fraction * len(present):
        raise _junk_error(table, name, cells, bad)
    if len(set(present.tolist())) == len(present) and len(present) >= _MIN_ROWS_FOR_ID:
        return "identifiers", "identifier: a different text in every row"
    return "categorical", None


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
    roles = {"id_columns": id_columns, "categorical": categorical, "numeric": numeric,
             "ignore": ignore}
    _check_names(table, [("--target", [target])]
                 + [(f"--{k.replace('_', '-')}", v) for k, v in roles.items()])
    plan = ColumnPlan(target)
    for name in table.header:
        if name == target:
            continue
        role, reason = _column_role(table, name, roles, max_junk_fraction)
        getattr(plan, role).append(name)
        if reason is not None:
            plan.reasons[name] = reason
    if not plan.features:
        raise DataError(
            f"no usable feature columns in {table.path}: "
            + "; ".join(f"{k} is {v}" for k, v in plan.reasons.items())
            + "."
        )
    return plan


def infer_task(table, plan):
    """``(task, reason)``: whether the target holds class labels or numbers to predict.

    Text -> classification; whole numbers with at most :data:`MAX_CLASSES_AUTO` distinct
    values -> classification (class codes such as 0/1 or 1..5); other numbers (with
    decimals, or many distinct whole numbers) -> regression.  Missing cells are ignored
    here (:func:`target_values` reports them).
    """
    cells = table.column(plan.target)
    cells = cells[~_is_missing(cells)]
    values, bad = _parse_floats(cells, table.decimal)
    name = repr(plan.target)
    if len(bad) or len(cells) == 0:
        return "classification", f"target {name} holds text"
    n_distinct = len(np.unique(values))
    if not np.all(values == np.round(values)):
        return "regression", (f"target {name} holds numbers with decimals, {n_distinct} "
                              "distinct values; --task classification treats them as labels")
    if n_distinct > MAX_CLASSES_AUTO:
        return "regression", (f"target {name} holds {n_distinct} distinct whole numbers, more "
                              f"than {MAX_CLASSES_AUTO}; --task classification treats them "
                              "as labels")
    return "classification", (f"target {name} holds {n_distinct} distinct whole number(s); "
                              "--task regression treats them as quantities")


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
            f"(data rows {rows_list(missing)}, counting from 0); every row needs a label."
        )
    values, bad = _parse_floats(cells, table.decimal)
    if task == "regression":
        if len(bad):
            raise DataError(
                f"target column {plan.target!r} must hold numbers for a regression model, "
                f"but has {len(bad)} non-numeric cell(s) such as {cells[bad[0]]!r} "
                f"(data rows {rows_list(bad)})."
            )
        return values
    if len(bad) == 0 and np.all(values == np.round(values)):
        # integral numbers: "1", "1.0" and "01" are the same class
        labels = np.array([str(int(v)) for v in values], dtype=object)
    else:
        labels = cells
    if not check_classes:
        return labels
    classes = np.unique(labels.astype(str))
    if len(classes) < 2:
        raise DataError(
            f"target column {plan.target!r} has a single class ({str(classes[0])!r}); "
            "a classifier needs at least two."
        )
    if len(classes) > max(50, table.n_rows // 2):
        raise DataError(
            f"target column {plan.target!r} has {len(classes)} distinct values in "
            f"{table.n_rows} rows; that looks like an identifier or a continuous quantity, "
            "not class labels (--task regression treats a numeric target as quantities)."
        )
    return labels


def feature_matrix(table, plan):
    """Object array ``(n_rows, n_features)``: floats (NaN if missing) and category strings."""
    X = np.empty((table.n_rows, len(plan.features)), dtype=object)
    for j, name in enumerate(plan.numeric):
        X[:, j] = _parse_floats(table.column(name), table.decimal)[0]
    offset = len(plan.numeric)
    for j, name in enumerate(plan.categorical):
        cells = table.column(name)
        X[:, offset + j] = np.where(_is_missing(cells), "(missing)", cells)
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
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             list(range(n_num)))
        )
    if n_cat:
        transformers.append(
            ("categorical",
             OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64),
             list(range(n_num, n_num + n_cat)))
        )
    return ColumnTransformer(transformers, sparse_threshold=0.0)


def _read(data, delimiter, decimal):
    if hasattr(data, "columns") and hasattr(data, "iloc"):  # a DataFrame
        return table_from_frame(data)
    return read_table(data, delimiter=delimiter, decimal=decimal)


def _notes(table, plan):
    """Things the user should know about how the table was read."""
    notes = []
    if table.decimal_conflict:
        commas, points = table.decimal_conflict
        notes.append(
            f"column(s) {short_list(commas, 4)} hold numbers with decimal commas but "
            f"{short_list(points, 4)} use decimal points; numbers were read with '.', so the "
            "former are not numeric (pass --decimal , if commas are the decimal mark)."
        )
    counts = [int(_is_missing(table.column(name)).sum()) for name in plan.features]
    n_missing = sum(counts)
    if n_missing:
        notes.append(
            f"{n_missing} missing value(s) in {sum(k > 0 for k in counts)} feature column(s) "
            "were filled in (median for numbers, a '(missing)' category for text)."
        )
    return notes


def load_table(
    data,
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
    """Read a table and turn it into features and labels, as the command line does.

    Parameters
    ----------
    data : str or pandas.DataFrame
        A CSV file (``"-"`` for standard input), a Parquet file (``*.parquet``,
        ``*.pq``; needs pyarrow or fastparquet) or a DataFrame.
    target : str
        Name of the label column.
    task : {"classification", "regression", "auto"}, default="classification"
        Whether the target holds class labels or numbers; ``"auto"``: decided by
        :func:`infer_task`.  ``plan.task`` and ``plan.task_reason`` say what was used.
    delimiter, decimal : str or None, default=None
        Field separator and decimal mark of a CSV file (None: guessed).
    id_columns, categorical, numeric, ignore : sequence of str, default=()
        Column roles that override the guesses, as the command-line options
        of the same names.

    Returns
    -------
    table : Table
        The cells as read.
    plan : ColumnPlan
        What every column is used for; ``plan.preprocessor`` is the fitted
        preprocessing.
    X : ndarray of shape (n_rows, n_features), float64
        Preprocessed (imputed, scaled, one-hot) features.
    y : ndarray of shape (n_rows,)
        Labels (object array of strings) or float targets for regression.
    notes : list of str
        Things the user should know (imputed values, decimal marks).
    """
    table = _read(data, delimiter, decimal)
    plan = infer_columns(
        table, target, id_columns=id_columns, categorical=categorical, numeric=numeric,
        ignore=ignore,
    )
    if task == "auto":
        task, reason = infer_task(table, plan)
    else:
        reason = "given"
    plan.task, plan.task_reason = task, reason
    y = target_values(table, plan, task=task)
    raw = feature_matrix(table, plan)
    notes = _notes(table, plan)
    pre = make_preprocessor(plan)
    X = np.ascontiguousarray(pre.fit_transform(raw), dtype=np.float64)
    plan.preprocessor = pre
    return table, plan, X, y, notes


def load_validation(data, plan, *, task="classification", delimiter=None, decimal=None):
    """Read a second table with the same columns and map it with the fitted preprocessing.

    Parameters
    ----------
    data : str or pandas.DataFrame
        As for :func:`load_table`.
    plan : ColumnPlan
        As returned by :func:`load_table` (holds the fitted ``preprocessor``).
    task : {"classification", "regression"}, default="classification"
    delimiter, decimal : str or None
        As for :func:`~skinfluence.cli._tabular.read_csv` (None: guessed from this file).

    Returns
    -------
    table : Table
    X : ndarray of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    """
    table = _read(data, delimiter, decimal)
    missing = [c for c in plan.features + [plan.target] if c not in table.header]
    if missing:
        raise DataError(
            f"{table.path} lacks column(s) {', '.join(missing)} that the training data uses."
        )
    for name in plan.numeric:
        cells = table.column(name)
        bad = _parse_floats(cells, table.decimal)[1]
        if len(bad):
            raise DataError(
                f"{table.path}: column {name!r} should hold numbers but has {len(bad)} "
                f"cell(s) such as {cells[bad[0]]!r} (data rows {rows_list(bad)})."
            )
    y = target_values(table, plan, task=task, check_classes=False)
    X = plan.preprocessor.transform(feature_matrix(table, plan))
    return table, np.ascontiguousarray(X, dtype=np.float64), y
