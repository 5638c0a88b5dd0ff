"""The ``skinfluence`` command line.

Sub-commands::

    skinfluence demo                                    # end-to-end tour on bundled data
    skinfluence label-issues DATA.csv --target LABEL    # rows ranked by label suspicion
    skinfluence explain DATA.csv --target LABEL --row N # training rows behind row N's prediction
    skinfluence value DATA.csv --target LABEL           # per-row data values

Exit codes: 0 success, 2 bad usage or unusable input (message on stderr, no
traceback), 1 unexpected failure.
"""

import argparse
import csv
import os
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np

from ._tabular import DataError, load_table, load_validation

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

MODELS = {
    "logistic": "logistic regression (default; exact influence)",
    "mlp": "neural network, 32 tanh units (MLPClassifier / MLPRegressor; approximate)",
    "linear-svm": "linear support vector machine (LinearSVC)",
    "ridge": "ridge regression, for a numeric target",
}

VALUE_METHODS = {
    "knn-shapley": "exact Shapley values of a K-nearest-neighbour classifier (fast)",
    "data-oob": "Data-OOB: out-of-bag accuracy of a bagged --model (no validation set)",
    "loo": "leave-one-out: drop in --validation score when the row is removed (refits)",
    "tmc-shapley": "Monte-Carlo Shapley values of --model on --validation (slow)",
}
_NEEDS_VALIDATION = {"loo", "tmc-shapley"}


class UsageError(Exception):
    """User-facing error: printed without traceback, exit code 2."""


# --------------------------------------------------------------------------- output helpers
class _Console:
    """Messages for people go to stderr when stdout carries data, else to stdout."""

    def __init__(self, quiet=False, data_on_stdout=False):
        self.quiet = quiet
        self.stream = sys.stderr if data_on_stdout else sys.stdout

    def say(self, text=""):
        print(text, file=self.stream, flush=True)

    def note(self, text):
        if not self.quiet:
            print(f"note: {text}", file=sys.stderr, flush=True)

    def progress(self, text):
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def _format_table(header, rows, max_width=24):
    """Fixed-width text table; long cells are shortened."""

    def cut(value):
        text = value if isinstance(value, str) else _fmt(value)
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    cells = [[cut(h) for h in header]] + [[cut(v) for v in row] for row in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _unique_names(existing, wanted):
    """Output column names that do not clash with the CSV's own columns."""
    taken = set(existing)
    out = []
    for name in wanted:
        new = name
        while new in taken:
            new = "skinfluence_" + new
        taken.add(new)
        out.append(new)
    return out


def _num(value, decimal="."):
    """A float cell for the output CSV, in the input's decimal mark."""
    text = repr(float(value))
    return text.replace(".", ",") if decimal == "," else text


def _check_writable(path, action="write"):
    """Fail before any work if ``path`` cannot be written.

    The directory must exist and accept a new file (tried by creating and removing
    one: os.access says yes to root even on a read-only file system), and the path
    must not be a directory.  ``action`` words the message: "cannot {action} {path}".
    """
    if path is None or path == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"cannot {action} {path}: that is a directory; give a file name.")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        what = "is a file, not a directory" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"cannot {action} {path}: {folder} {what}.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".skinfluence-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot {action} {path}: no new file can be made in {folder} "
                         f"({exc.strerror}).") from None
    os.close(fd)
    os.remove(probe)


def _write_csv(path, header, rows, delimiter=","):
    """Write a CSV in the input's dialect (same delimiter) to a file or stdout ('-').

    A file is written to a temporary file next to it and renamed into place, so
    a failed write leaves no partial file and any earlier ``path`` untouched.
    """
    if path == "-":
        writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
        return
    target = os.path.realpath(path)  # write through a symlink, as open() would
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                                   prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=delimiter)
            writer.writerow(header)
            writer.writerows(rows)
        # mkstemp makes the file private (0600); give it the mode open() would have
        if os.path.exists(target):
            mode = os.stat(target).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _save_plot(path, draw, console):
    """Draw with ``draw(ax)`` and save to ``path`` (needs matplotlib, imported only here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'skinfluence[plot]'.") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw(ax)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot save the plot to {path}: {exc}") from None
    finally:
        plt.close(fig)
    console.say(f"saved the plot to {path}")


def _split_names(text):
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


# --------------------------------------------------------------------------- models and data
def make_model(name, task="classification", random_state=0):
    """The estimator behind ``--model NAME`` (features arrive already scaled / one-hot)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.svm import LinearSVC

    if name == "ridge":
        if task != "regression":
            raise UsageError("--model ridge is a regression model; use it with `value` or "
                             "`explain` on a numeric target.")
        return Ridge(alpha=1.0)
    if task == "regression":
        if name == "mlp":
            return MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs",
                                alpha=1.0, tol=1e-6, max_iter=2000, random_state=random_state)
        raise UsageError(f"--model {name} is a classifier; for a numeric target use "
                         "--model ridge or --model mlp with --regression.")
    if name == "logistic":
        # Influence assumes the fit is at the optimum: converge tightly (cheap here).
        return LogisticRegression(tol=1e-8, max_iter=10_000)
    if name == "mlp":
        # lbfgs converges (deterministically) on small tabular data and tanh keeps the
        # Hessian smooth; influence needs both
        return MLPClassifier(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs",
                             alpha=1.0, tol=1e-6, max_iter=2000, random_state=random_state)
    if name == "linear-svm":
        return LinearSVC(C=1.0)
    raise UsageError(f"unknown model {name!r}; choose from {', '.join(MODELS)}.")


def _load(args, console, task="classification"):
    table, plan, X, y, notes = load_table(
        args.data,
        args.target,
        task=task,
        delimiter=args.delimiter,
        decimal=args.decimal,
        id_columns=_split_names(args.id_columns),
        categorical=_split_names(args.categorical),
        numeric=_split_names(args.numeric),
        ignore=_split_names(args.ignore),
    )
    console.progress(
        f"read {table.n_rows} rows from {args.data}; {len(plan.features)} feature column(s) "
        f"-> {X.shape[1]} model input(s)"
    )
    if args.verbose or table.delimiter != "," or table.decimal != ".":
        console.progress(_dialect(table))
    if args.verbose:
        console.progress(plan.describe())
    else:
        for name in plan.identifiers + plan.constant:
            console.note(f"column {name!r} is not used as a feature ({plan.reasons[name]}).")
    for text in notes:
        console.note(text)
    return table, plan, X, y


def _dialect(table):
    """One line saying how the file's separator and decimal mark were settled."""
    sep = "tab" if table.delimiter == "\t" else repr(table.delimiter)
    sep_how = "guessed" if table.guessed["delimiter"] else "given"
    if not table.guessed["decimal"]:
        dec_how = "given"
    elif table.decimal_evidence:
        names = table.decimal_evidence
        dec_how = "guessed from column(s) " + ", ".join(names[:4]) + (
            f", ... ({len(names) - 4} more)" if len(names) > 4 else "")
    else:
        dec_how = "guessed"
    return (f"separator {sep} ({sep_how}), decimal mark {table.decimal!r} ({dec_how}); "
            "--delimiter and --decimal set them")


def _task(args):
    return "regression" if getattr(args, "regression", False) or args.model == "ridge" else (
        "classification"
    )


# --------------------------------------------------------------------------- label-issues
CLEAN_METHODS = {
    "loo": "approximate leave-one-out probabilities + confident learning (default; one fit)",
    "self_influence": "predicted rise of a row's own loss when it is removed",
    "loss": "in-sample loss (baseline)",
    "cross_val": "5-fold cross-validated probabilities + confident learning (any model)",
}


def rank_label_issues(X, y, estimator, *, method="loo", verbose=0):
    """Suspicion score, issue flag and suggested label for every row.

    Uses :class:`skinfluence.InfluenceCleaner`.  Returns ``(scores, issues,
    suggested)`` with higher scores more suspicious.
    """
    from skinfluence.cleaning import InfluenceCleaner

    cleaner = InfluenceCleaner(estimator, method=method, verbose=verbose)
    try:
        cleaner.fit(X, y)
    except TypeError as exc:
        if "not supported" in str(exc) and method != "cross_val":
            raise UsageError(f"{exc}\nTry --method cross_val, which works with any model.") \
                from None
        raise
    return (
        np.asarray(cleaner.scores_, dtype=np.float64),
        np.asarray(cleaner.issues_, dtype=bool),
        np.asarray(cleaner.suggested_labels_, dtype=object),
    )


def cmd_label_issues(args):
    console = _Console(args.quiet, data_on_stdout=args.output == "-")
    table, plan, X, y = _load(args, console)
    _check_class_sizes(y, console)
    estimator = make_model(args.model, "classification", args.random_state)
    console.progress(f"scoring every label with {type(estimator).__name__} ...")
    scores, issues, suggested = rank_label_issues(
        X, y, estimator, method=args.method,
        verbose=int(args.verbose and args.output != "-"),
    )
    order = np.lexsort((np.arange(len(scores)), -scores))
    extra = _unique_names(table.header, ["row", "score", "given_label", "suggested_label", "issue"])
    header = table.header + extra
    out_rows = [
        table.rows[i]
        + [str(i), _num(scores[i], table.decimal), str(y[i]), str(suggested[i]),
           str(bool(issues[i]))]
        for i in order
    ]
    n_issues = int(issues.sum())
    console.say(
        f"{n_issues} of {table.n_rows} rows ({100.0 * n_issues / table.n_rows:.1f}%) look "
        "mislabelled."
    )
    if args.output:
        _write_csv(args.output, header, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"wrote all {table.n_rows} rows ranked by suspicion to {args.output}")
    shown = order[: args.show]
    if args.output != "-" and len(shown):
        keep = _display_columns(table, plan)
        rows = [
            [str(i), scores[i], str(y[i]), str(suggested[i]), "yes" if issues[i] else ""]
            + [table.rows[i][table.header.index(c)] for c in keep]
            for i in shown
        ]
        console.say(f"\nmost suspicious {len(shown)} rows:")
        console.say(_format_table(["row", "score", "given", "suggested", "issue"] + keep, rows))
        if not args.output:
            console.say("\n(use --output FILE.csv to save every row with its score)")
    if args.plot:
        from skinfluence.plot import plot_value_distribution

        def draw(ax):
            plot_value_distribution(scores, np.where(issues, "flagged", "not flagged"), ax=ax)
            ax.set_xlabel("suspicion score (higher = label more likely wrong)")
            ax.set_title(f"{args.data}: {n_issues} of {table.n_rows} rows flagged")

        _save_plot(args.plot, draw, console)
    return EXIT_OK


def _display_columns(table, plan, limit=3):
    """A few columns that help a person recognise a row: identifiers first."""
    cols = [c for c in plan.identifiers if c in table.header]
    return cols[:limit]


def _check_class_sizes(y, console):
    classes, counts = np.unique(y.astype(str), return_counts=True)
    small = [f"{str(c)!r} ({k})" for c, k in zip(classes, counts) if k < 2]
    if small:
        raise DataError(
            "some classes have a single row, so nothing can be said about their labels: "
            + ", ".join(small)
            + ". Remove those rows or merge the classes."
        )
    few = [f"{str(c)!r} ({k})" for c, k in zip(classes, counts) if k < 5]
    if few:
        console.note("classes with fewer than 5 rows get unreliable scores: " + ", ".join(few))


# --------------------------------------------------------------------------- explain
def explain_row(X, y, estimator, row, *, k=10, against="prediction", task="classification",
                verbose=0):
    """Fit ``estimator`` on all rows and explain the prediction for ``row``.

    Returns ``(kinds, explained, predicted)``: ``kinds`` maps a heading to
    ``(indices, values)`` of the top ``k`` training rows.  For classifiers,
    and for regressors with ``against="label"``, the values are influences on
    the loss of the explained label (positive: the training row helps).  For
    a regressor's prediction they are each row's contribution to the
    predicted value: minus its change when the row is removed.
    """
    from skinfluence import InfluenceFunctions

    inf = InfluenceFunctions(estimator, verbose=verbose)
    inf.fit(X, y)
    x = X[row : row + 1]
    predicted = inf.predict(x)[0]
    if task == "regression" and against == "prediction":
        # The squared loss at the model's own prediction is flat; explain the value instead.
        contribution = -inf.transform(x)[0]
        k = min(k, len(contribution))
        up = np.argsort(-contribution, kind="stable")[:k]
        down = np.argsort(contribution, kind="stable")[:k]
        kinds = {"raises": (up, contribution[up]), "lowers": (down, contribution[down])}
        return kinds, predicted, predicted
    target = predicted if against == "prediction" else y[row]
    bunch = inf.explain(x, np.asarray([target], dtype=y.dtype), k=k)
    kinds = {
        kind: (np.asarray(bunch[f"{kind}_indices"])[0], np.asarray(bunch[f"{kind}_values"])[0])
        for kind in ("helpful", "harmful")
    }
    return kinds, target, predicted


_EXPLAIN_HEADINGS = {
    "helpful": "most helpful training rows",
    "harmful": "most harmful training rows",
    "raises": "training rows that raise the prediction most",
    "lowers": "training rows that lower the prediction most",
}


def cmd_explain(args):
    console = _Console(args.quiet, data_on_stdout=args.output == "-")
    task = _task(args)
    table, plan, X, y = _load(args, console, task)
    n = table.n_rows
    row = args.row
    if not 0 <= row < n:
        # no counting from the end: -1 is too easily a typo or a "no row" marker
        raise UsageError(f"--row {row} is out of range: the file has {n} data rows, "
                         f"numbered 0 to {n - 1} (header not counted).")
    if task == "classification":
        _check_class_sizes(y, console)
    estimator = make_model(args.model, task, args.random_state)
    k = min(args.k, n - 1)
    console.progress(f"fitting {type(estimator).__name__} and computing influence on row {row} ...")
    kinds, target, predicted = explain_row(
        X, y, estimator, row, k=k, against=args.against, task=task,
        verbose=int(not args.quiet and args.output != "-"),
    )
    what = "the model's prediction" if args.against == "prediction" else "the given label"
    console.say(
        f"row {row}: given {plan.target} = {table.rows[row][table.header.index(plan.target)]}, "
        f"predicted {_fmt(predicted)}; explaining {what} ({_fmt(target)})."
    )
    if "raises" in kinds:
        value_name = "effect"
        console.say("effect = how much the training row raises the prediction for this row\n"
                    "(minus the change of the prediction if the row were removed and the "
                    "model refit)")
    else:
        value_name = "influence"
        console.say("influence = how much the loss on this row would rise if the training row "
                    "were removed\n(positive: the training row supports it; negative: it works "
                    "against it)")
    keep = _display_columns(table, plan)
    out_rows = []
    itself = False
    for kind, (idx, val) in kinds.items():
        rows = []
        for rank, (j, v) in enumerate(zip(idx, val), start=1):
            j = int(j)
            itself |= j == row
            rows.append([str(rank), f"{j}*" if j == row else str(j), float(v), str(y[j])]
                        + [table.rows[j][table.header.index(c)] for c in keep])
            out_rows.append([kind, str(rank), str(j), _num(v, table.decimal)] + table.rows[j])
        console.say(f"\n{_EXPLAIN_HEADINGS[kind]}:")
        console.say(_format_table(["rank", "row", value_name, plan.target] + keep, rows))
    if itself:
        console.say(f"\n* row {row} itself: it is part of the training data too.")
    if args.output:
        extra = _unique_names(table.header, ["kind", "rank", "row", value_name])
        _write_csv(args.output, extra + table.header, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"\nwrote the {len(out_rows)} rows to {args.output}")
    if args.plot:
        from skinfluence.plot import plot_explanation

        (top_kind, (top_i, top_v)), (low_kind, (low_i, low_v)) = kinds.items()
        bunch = {"helpful_indices": top_i[None], "helpful_values": top_v[None],
                 "harmful_indices": low_i[None], "harmful_values": low_v[None]}

        def draw(ax):
            plot_explanation(bunch, y_train=y, ax=ax)
            ax.set_xlabel(value_name)
            ax.set_title(f"row {row}: {_EXPLAIN_HEADINGS[top_kind]} (blue) and "
                         f"{_EXPLAIN_HEADINGS[low_kind].split(' ', 1)[1]} (red)", fontsize=9)

        _save_plot(args.plot, draw, console)
    return EXIT_OK


# --------------------------------------------------------------------------- value
def value_rows(X, y, method, estimator, *, X_val=None, y_val=None, n_neighbors=5,
               random_state=0, verbose=0):
    """Data value of every row (higher = more helpful) with the given valuation method."""
    import skinfluence

    if method == "knn-shapley":
        valuer = skinfluence.KNNShapley(n_neighbors=n_neighbors)
    elif method == "data-oob":
        valuer = skinfluence.DataOOB(estimator, random_state=random_state)
    elif method == "loo":
        valuer = skinfluence.LOOValuation(estimator)
    elif method == "tmc-shapley":
        valuer = skinfluence.TMCShapley(estimator)
    else:
        raise UsageError(f"unknown method {method!r}; choose from {', '.join(VALUE_METHODS)}.")
    params = valuer.get_params()
    if "verbose" in params:
        valuer.set_params(verbose=verbose)
    if "random_state" in params:
        valuer.set_params(random_state=random_state)
    valuer.fit(X, y, X_val=X_val, y_val=y_val)
    return np.asarray(valuer.values_, dtype=np.float64)


def cmd_value(args):
    console = _Console(args.quiet, data_on_stdout=args.output == "-")
    task = _task(args)
    if task == "regression" and args.method == "knn-shapley":
        raise UsageError("knn-shapley values classifiers; for a numeric target use "
                         "--method data-oob, loo or tmc-shapley.")
    if args.method in _NEEDS_VALIDATION and not args.validation:
        raise UsageError(f"--method {args.method} scores the model on a validation set: pass "
                         "--validation VAL.csv (same columns), or use knn-shapley or data-oob.")
    if args.method == "data-oob" and args.validation:
        raise UsageError("data-oob values rows by their out-of-bag scores and uses no "
                         "validation set; drop --validation.")
    table, plan, X, y = _load(args, console, task)
    if task == "classification":
        _check_class_sizes(y, console)
    X_val = y_val = None
    if args.validation:
        _, X_val, y_val = load_validation(args.validation, plan, task=task,
                                          delimiter=args.delimiter, decimal=args.decimal)
        console.progress(f"validation: {len(y_val)} rows from {args.validation}")
    estimator = make_model(args.model, task, args.random_state)
    if args.method == "knn-shapley" and X_val is None:
        console.note("no --validation file: each row is valued by how it helps classify the "
                     "other rows.")
    console.progress(f"valuing every row with {args.method} ...")
    values = value_rows(X, y, args.method, estimator, X_val=X_val, y_val=y_val,
                        n_neighbors=args.n_neighbors, random_state=args.random_state,
                        verbose=int(not args.quiet and args.output != "-"))
    order = np.lexsort((np.arange(len(values)), values))  # least valuable first
    extra = _unique_names(table.header, ["row", "value", "rank"])
    out_rows = [table.rows[i] + [str(i), _num(values[i], table.decimal), str(r)]
                for r, i in enumerate(order, start=1)]
    console.say(f"valued {table.n_rows} rows with {args.method} (higher = more helpful); "
                f"median {np.median(values):.4g}, {int((values < 0).sum())} negative.")
    if args.output:
        _write_csv(args.output, table.header + extra, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"wrote all rows, least valuable first, to {args.output}")
    if args.output != "-" and args.show:
        keep = _display_columns(table, plan)
        show = min(args.show, table.n_rows)
        for title, idx in (("least", order[:show]), ("most", order[::-1][:show])):
            rows = [[str(i), values[i], str(y[i])]
                    + [table.rows[i][table.header.index(c)] for c in keep] for i in idx]
            console.say(f"\n{title} valuable {len(idx)} rows:")
            console.say(_format_table(["row", "value", plan.target] + keep, rows))
    if args.plot:
        from skinfluence.plot import plot_value_distribution

        def draw(ax):
            plot_value_distribution(values, ax=ax)
            ax.set_title(f"{args.data}: {args.method} values of {table.n_rows} rows")

        _save_plot(args.plot, draw, console)
    return EXIT_OK


# --------------------------------------------------------------------------- demo
_SHADES = " .:-=+*#%@"


def _digit_art(image):
    """An 8x8 digit (values 0..16) as 8 lines of 16 characters."""
    image = np.asarray(image, dtype=float).reshape(8, 8)
    idx = np.clip((image / 16.0 * (len(_SHADES) - 1)).round().astype(int), 0, len(_SHADES) - 1)
    return ["".join(_SHADES[v] * 2 for v in line) for line in idx]


def _side_by_side(blocks, captions, gap=3):
    """Text blocks next to each other under their captions, indented like the report."""
    width = max(len(line) for block in blocks for line in block)
    width = max(width, max(len(c) for c in captions))
    lines = [(" " * gap).join(c.ljust(width) for c in captions)]
    for k in range(len(blocks[0])):
        lines.append((" " * gap).join(block[k].ljust(width) for block in blocks))
    return "\n".join("   " + line.rstrip() for line in lines)


class _Stages:
    """Stage counter with a tqdm bar when tqdm is installed, plain lines otherwise."""

    def __init__(self, names, quiet):
        self.names = names
        self.quiet = quiet
        self.bar = None
        self.t0 = time.perf_counter()
        if not quiet:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=len(names), desc="demo", unit="step", file=sys.stderr,
                                leave=False)
            except ImportError:
                pass

    def start(self, i):
        if self.quiet:
            return
        text = f"[{i + 1}/{len(self.names)}] {self.names[i]} ..."
        if self.bar is not None:
            self.bar.set_description(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def done(self):
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0


def run_demo(quiet=False, random_state=0, noise_rate=0.1):
    """End-to-end tour: flipped labels found, a prediction explained, rows valued.

    Uses scikit-learn's bundled handwritten digits (no download): 10% of the
    training labels are flipped, then

    1. :class:`~skinfluence.InfluenceCleaner` ranks the rows by label suspicion;
    2. :class:`~skinfluence.InfluenceFunctions` explains one test prediction by
       its most helpful and most harmful training digits;
    3. :class:`~skinfluence.KNNShapley` values every training row.

    The computations run first, under a progress bar; the report follows.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import skinfluence
    from skinfluence.datasets import make_noisy_labels

    stages = _Stages(["finding flipped labels", "explaining a prediction", "valuing rows"],
                     quiet)
    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test, img_train, img_test = train_test_split(
        X, digits.target, digits.images, test_size=300, random_state=random_state,
        stratify=digits.target,
    )
    y_noisy, flipped = make_noisy_labels(y_train, noise_rate, random_state=random_state)
    n, n_flip = len(y_noisy), int(flipped.sum())

    stages.start(0)
    scores, issues, suggested = rank_label_issues(
        X_train, y_noisy, make_model("logistic"), verbose=0
    )
    stages.done()

    stages.start(1)
    inf = skinfluence.InfluenceFunctions(make_model("logistic")).fit(X_train, y_noisy)
    pred = inf.predict(X_test)
    wrong = np.flatnonzero(pred != y_test)
    i = int(wrong[0]) if len(wrong) else 0
    expl = inf.explain(X_test[i : i + 1], pred[i : i + 1], k=3)
    stages.done()

    stages.start(2)
    values = np.asarray(
        skinfluence.KNNShapley(n_neighbors=5)
        .fit(X_train, y_noisy, X_val=X_test, y_val=y_test)
        .values_
    )
    stages.done()
    seconds = stages.close()

    # ------------------------------------------------------------------ report
    def say(text=""):
        print(text, flush=True)

    say(f"skinfluence demo: {n} handwritten digits (8x8 pixels, bundled with scikit-learn);\n"
        f"{n_flip} of their labels ({noise_rate:.0%}) were flipped at random.")

    say("\n1. Finding the flipped labels (InfluenceCleaner + LogisticRegression, one fit)")
    found = flipped[np.argsort(-scores, kind="stable")]
    for frac in (0.05, 0.1, 0.2):
        m = int(round(frac * n))
        say(f"   checking the {m:4d} most suspicious rows ({frac:3.0%}) finds "
            f"{found[:m].sum() / n_flip:6.1%} of the flips (random order: {frac:.0%})")
    n_issue = int(issues.sum())
    if n_issue:
        hit = issues & flipped
        fixed = np.mean(suggested[hit] == y_train[hit]) if hit.any() else float("nan")
        say(f"   {n_issue} rows flagged, {flipped[issues].mean():.0%} of them really flipped; "
            f"the suggested label is the true one for {fixed:.0%} of those.")

    say(f"\n2. Why does the model (trained on the noisy labels) call test digit #{i} a "
        f"{pred[i]}? Its true label is {y_test[i]}.")
    h_idx = [int(j) for j in np.asarray(expl["helpful_indices"])[0]]
    b_idx = [int(j) for j in np.asarray(expl["harmful_indices"])[0]]
    blank = [" " * 16] * 8
    say(_side_by_side(
        [_digit_art(img_test[i])] + [_digit_art(img_train[j]) for j in h_idx],
        [f"test #{i}"] + [f"+ #{j} y={y_noisy[j]}{'!' if flipped[j] else ''}" for j in h_idx],
    ))
    say(_side_by_side(
        [blank] + [_digit_art(img_train[j]) for j in b_idx],
        [""] + [f"- #{j} y={y_noisy[j]}{'!' if flipped[j] else ''}" for j in b_idx],
    ))
    say("   + most helpful training rows (removing one would raise the loss of this "
        "prediction most)\n   - most harmful ones;  ! = a flipped label.")
    n_bad = sum(bool(flipped[j]) for j in h_idx)
    if n_bad:
        say(f"   {n_bad} of the {len(h_idx)} rows behind this mistake carry flipped labels: "
            "the model learnt it from them.")

    say("\n3. Data values (KNNShapley: exact Shapley values, validated on 300 test digits)")
    low = np.argsort(values, kind="stable")
    say(f"   of the {n_flip} least valuable rows, {flipped[low[:n_flip]].mean():.0%} are "
        f"flipped labels (random: {n_flip / n:.0%}).  The five least valuable:")
    rows = [[str(int(j)), values[j], str(y_noisy[j]), str(y_train[j]),
             "yes" if flipped[j] else ""] for j in low[:5]]
    say("   " + _format_table(["row", "value", "given", "true", "flipped"], rows)
        .replace("\n", "\n   "))
    say(f"\ndone in {seconds:.1f} s.  Next: `skinfluence label-issues YOUR.csv --target "
        "COLUMN`, or `skinfluence --help`.")
    return EXIT_OK


def cmd_demo(args):
    from threadpoolctl import threadpool_limits

    # The demo's problems are small: one BLAS thread is fastest and cannot
    # oversubscribe a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return run_demo(quiet=args.quiet, random_state=args.random_state)


# --------------------------------------------------------------------------- parser
_DESCRIPTION = """\
skinfluence: which training rows made my model do this, and what is each row worth?

Start with `skinfluence demo`, then try it on your own CSV:

  skinfluence label-issues data.csv --target label --output ranked.csv
  skinfluence explain data.csv --target label --row 17
  skinfluence value data.csv --target label

Feature columns may hold numbers or text categories; columns that identify rows
(a different text in every row, or a row counter) are kept in the output but
not used as features.  Rows are numbered from 0, header not counted.
"""

_EPILOG = """\
exit codes: 0 success, 2 bad usage or unusable data (the message says why),
1 unexpected failure (rerun with --debug for the traceback).
"""


def _add_data_arguments(p, *, models_help=True):
    p.add_argument("data", metavar="DATA.csv", help="CSV file with a header row ('-' for stdin)")
    p.add_argument("--target", "-t", required=True, metavar="COLUMN",
                   help="name of the label column")
    p.add_argument("--model", "-m", default="logistic", choices=list(MODELS), metavar="NAME",
                   help="model to fit; " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()))
    p.add_argument("--output", "-o", metavar="OUT.csv",
                   help="write the full result as CSV ('-' for stdout)")
    p.add_argument("--id-columns", metavar="A,B", help="columns to pass through, not features")
    p.add_argument("--categorical", metavar="A,B",
                   help="columns to treat as categories even if they hold numbers")
    p.add_argument("--numeric", metavar="A,B",
                   help="columns to use as numbers even if they look like identifiers")
    p.add_argument("--ignore", metavar="A,B", help="columns not to use as features")
    p.add_argument("--delimiter", "--sep", type=_separator, metavar="CHAR",
                   help="field separator: one character, or 'tab' (default: guessed)")
    p.add_argument("--decimal", choices=[".", ","], metavar="MARK",
                   help="decimal mark of the numbers, '.' or ',' (default: ',' only in a file "
                   "not separated by commas whose numbers are written like 0,25)")
    p.add_argument("--show", type=_nonneg_int, default=10, metavar="N",
                   help="rows to print (default: 10)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also save a picture of the result (needs matplotlib)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed for models that use randomness (default: 0)")


def _separator(text):
    if text.lower() in ("tab", "\\t"):
        return "\t"
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character or 'tab', got {text!r}")
    return text


def _nonneg_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _pos_int(text):
    value = _nonneg_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


def build_parser():
    """The argparse parser (exposed for documentation and tests)."""
    from skinfluence import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="only print results")
    common.add_argument("--verbose", "-v", action="store_true",
                        help="say how every column is used")
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback of unexpected errors")

    parser = argparse.ArgumentParser(
        prog="skinfluence",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skinfluence {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo", parents=[common], help="a one-minute tour on bundled data",
        description="Flip 10%% of the labels of scikit-learn's handwritten digits, then find "
        "them, explain a prediction through its training rows, and rank rows by data value.",
    )
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed for the label flips (default: 0)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "label-issues", parents=[common], help="rank rows by how likely their label is wrong",
        description=textwrap.fill(
            "Fit the model, score every row's label with influence functions and write the "
            "rows ranked by suspicion: all original columns plus row, score, given_label, "
            "suggested_label and issue.", 79),
        epilog="methods:\n" + "\n".join(f"  {k:15s} {v}" for k, v in CLEAN_METHODS.items())
        + "\n\nexample: skinfluence label-issues data.csv --target label -o ranked.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_arguments(p)
    p.add_argument("--method", default="loo", choices=list(CLEAN_METHODS), metavar="NAME",
                   help="how labels are scored (default: loo; see below)")
    p.set_defaults(func=cmd_label_issues)

    p = sub.add_parser(
        "explain", parents=[common], help="training rows that most help / hurt one prediction",
        description="Fit the model on all rows, then list the training rows whose removal "
        "would most change the loss on row N (influence functions).",
        epilog="example: skinfluence explain data.csv --target label --row 17 -k 5",
    )
    _add_data_arguments(p)
    p.add_argument("--row", "-r", type=int, required=True, metavar="N",
                   help="row to explain, counting data rows from 0 (header not counted)")
    p.add_argument("-k", type=_pos_int, default=5, metavar="K",
                   help="number of helpful and of harmful rows (default: 5)")
    p.add_argument("--against", choices=["prediction", "label"], default="prediction",
                   help="explain the predicted label (default) or the given label")
    p.add_argument("--regression", action="store_true",
                   help="the target is a number (default model then: ridge)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "value", parents=[common], help="how much each row is worth to the model",
        description=textwrap.fill(
            "Compute a data value for every row (higher = more helpful) and write the rows "
            "least valuable first.", 79),
        epilog="methods:\n" + "\n".join(f"  {k:12s} {v}" for k, v in VALUE_METHODS.items())
        + "\n\nexample: skinfluence value data.csv --target label --output values.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_arguments(p)
    p.add_argument("--method", default="knn-shapley", choices=list(VALUE_METHODS),
                   metavar="NAME", help="valuation method (default: knn-shapley; see below)")
    p.add_argument("--validation", metavar="VAL.csv",
                   help="trusted rows with the same columns to score the model on "
                   "(needed by loo and tmc-shapley; optional for knn-shapley)")
    p.add_argument("--n-neighbors", type=_pos_int, default=5, metavar="K",
                   help="neighbours for knn-shapley (default: 5)")
    p.add_argument("--regression", action="store_true", help="the target is a number")
    p.set_defaults(func=cmd_value)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # Library warnings (e.g. damping added to a Hessian) matter to users, but the
    # source line they come from does not.
    print(f"skinfluence: warning: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    """Run the command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    code : int
        0 on success, 2 for bad usage or unusable data, 1 for unexpected failures.

    Examples
    --------
    >>> from skinfluence.cli import main
    >>> main(["--version"])  # doctest: +SKIP
    skinfluence 0.1.0.dev0
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "regression", False) and args.model == "logistic":
        args.model = "ridge"
    # Messages and tables must not crash on a terminal that cannot show a cell's
    # characters; CSV data on stdout (--output -) stays strict.
    streams = [sys.stderr] + ([sys.stdout] if getattr(args, "output", None) != "-" else [])
    for stream in streams:
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        # fail before the work, not after it
        _check_writable(getattr(args, "output", None))
        _check_writable(getattr(args, "plot", None), "save the plot to")
        if getattr(args, "plot", None):
            import importlib.util

            if importlib.util.find_spec("matplotlib") is None:
                raise UsageError("--plot needs matplotlib: pip install 'skinfluence[plot]'.")
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except (UsageError, DataError) as exc:
        print(f"skinfluence {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `skinfluence value ... -o - | head`
        return EXIT_OK
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(f"skinfluence {args.command}: unexpected error: {type(exc).__name__}: {exc}\n"
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
