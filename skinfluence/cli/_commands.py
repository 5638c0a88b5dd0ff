"""The ``label-issues``, ``explain`` and ``value`` commands, for classification and regression."""

import numpy as np

from ._columns import load_table, load_validation
from ._models import (
    MODELS,
    REGRESSORS_ONLY,
    default_model,
    influence_approximation,
    lasso_alpha,
    make_model,
    ridge_alpha,
)
from ._render import (
    Console,
    UsageError,
    fmt,
    format_table,
    num,
    save_plot,
    unique_names,
    write_csv,
)
from ._tabular import DataError

__all__ = ["MODELS", "CLEAN_METHODS", "VALUE_METHODS", "make_model", "rank_label_issues",
           "explain_row", "value_rows", "cmd_label_issues", "cmd_explain", "cmd_value"]

EXIT_OK = 0

CLEAN_METHODS = {
    "loo": "approximate leave-one-out probabilities + confident learning (default; one fit)",
    "self_influence": "predicted rise of a row's own loss when it is removed",
    "loss": "in-sample loss (baseline)",
    "cross_val": "5-fold cross-validated probabilities + confident learning (any model)",
}

VALUE_METHODS = {
    "knn-shapley": "exact Shapley values of a K-nearest-neighbour classifier or regressor "
    "(fast)",
    "data-oob": "Data-OOB: out-of-bag accuracy of a bagged --model (no validation set; "
    "--model forest: its own trees, one fit)",
    "loo": "leave-one-out: drop in --validation score when the row is removed (refits)",
    "tmc-shapley": "Monte-Carlo Shapley values of --model on --validation (slow)",
    "influence": "influence functions: predicted rise of the mean --validation loss when the "
    "row is removed, one fit (--model forest: trees regrown exactly; hgb: LeafInfluence)",
}
_NEEDS_VALIDATION = {"loo", "tmc-shapley", "influence"}


# --------------------------------------------------------------------------- task and data
def _split_names(text):
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


def _requested_task(args):
    """``(task, reason)`` asked for on the command line; ``("auto", None)``: let the data say."""
    import warnings

    task = getattr(args, "task", None) or "auto"
    if getattr(args, "regression", False):
        warnings.warn("--regression is deprecated and will be removed in 0.3; use "
                      "--task regression.", FutureWarning, stacklevel=2)
        if task == "classification":
            raise UsageError("--regression contradicts --task classification; drop one.")
        return "regression", "--regression, the deprecated spelling of --task regression"
    if task != "auto":
        return task, "given by --task"
    if args.model is not None and args.model in REGRESSORS_ONLY:
        return "regression", f"--model {args.model} is a regression model"
    return "auto", None


def _load(args, console):
    """Read the data; ``plan.task`` says whether it is classification or regression."""
    task, reason = _requested_task(args)
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
    if reason is not None:
        plan.task_reason = reason
    console.progress(
        f"read {table.n_rows} rows from {args.data}; {len(plan.features)} feature column(s) "
        f"-> {X.shape[1]} model input(s)"
    )
    console.progress(f"task: {plan.task} ({plan.task_reason})")
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
    if table.source != "csv":
        return f"read as {table.source.capitalize()} (no separator or decimal mark to settle)"
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


def _model(args, task, X, y, console):
    """The estimator of ``--model`` (default: by task) for the loaded data, announced."""
    name = args.model or default_model(task)
    alpha = getattr(args, "alpha", None)
    if alpha is not None and name not in ("ridge", "kernel-ridge", "lasso"):
        raise UsageError(f"--alpha is the penalty of --model ridge, kernel-ridge or lasso; "
                         f"--model {name} has none.")
    if name == "ridge" and task == "regression" and alpha is None:
        path = ridge_alpha(X, y)
        alpha = path.alpha
        console.progress(f"model: ridge regression with alpha = {alpha:.4g}, chosen by exact "
                         f"leave-one-out over {len(path.alphas)} values (mean squared "
                         f"leave-one-out error {path.loo_mse.min():.4g})")
        if path.at_edge:
            console.note(f"alpha = {alpha:.4g} is at the edge of the values tried; --alpha "
                         "sets it.")
    if name == "lasso" and task == "regression" and alpha is None:
        alpha = lasso_alpha(X, y)
        console.progress(f"model: lasso with alpha = {alpha:.4g}, chosen by 5-fold LassoCV")
    return make_model(name, task, args.random_state, alpha=alpha)


def _cell(value):
    """A target value for a text table: labels as they are, numbers shortened."""
    return fmt(value) if isinstance(value, (float, np.floating)) else str(value)


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


# --------------------------------------------------------------------------- label-issues
def rank_label_issues(X, y, estimator, *, method="loo", verbose=0, task="classification",
                      n_jobs=None):
    """Suspicion score, issue flag and suggested label for every row.

    Uses :class:`skinfluence.InfluenceCleaner`.  Returns ``(scores, issues,
    suggested)`` with higher scores more suspicious.  For regression the suggested
    labels are numbers (the cleaner's leave-one-out predictions) and ``method=None``
    takes the cleaner's default.
    """
    import warnings

    from skinfluence.cleaning import InfluenceCleaner

    params = {} if method is None else {"method": method}
    cleaner = InfluenceCleaner(estimator, verbose=verbose, n_jobs=n_jobs, **params)
    try:
        with warnings.catch_warnings():  # cmd_label_issues words it for --model hgb
            warnings.filterwarnings("ignore", message=".*confident learning \\(threshold")
            cleaner.fit(X, y)
    except TypeError as exc:
        if "not supported" in str(exc) and method != "cross_val":
            raise UsageError(f"{exc}\nTry --method cross_val, which works with any model.") \
                from None
        raise
    except ValueError as exc:
        if task == "regression" and "Unknown label type" in str(exc):
            raise UsageError(
                "label-issues on a numeric target needs the regression path of "
                "InfluenceCleaner, which this version of skinfluence lacks; --task "
                "classification treats the target's values as class labels.") from None
        raise
    suggested_type = np.float64 if task == "regression" else object
    return (
        np.asarray(cleaner.scores_, dtype=np.float64),
        np.asarray(cleaner.issues_, dtype=bool),
        np.asarray(cleaner.suggested_labels_, dtype=suggested_type),
    )


def cmd_label_issues(args):
    console = Console(args.quiet, data_on_stdout=args.output == "-")
    if args.dask or args.scheduler:  # a file larger than memory, read by dask: _dask.py
        from ._dask import run_dask

        return run_dask(args, console, "label-issues")
    table, plan, X, y = _load(args, console)
    regression = plan.task == "regression"
    if not regression:
        _check_class_sizes(y, console)
    estimator = _model(args, plan.task, X, y, console)
    console.progress(f"scoring every {'target' if regression else 'label'} with "
                     f"{type(estimator).__name__} ...")
    scores, issues, suggested = rank_label_issues(
        X, y, estimator, method=args.method or (None if regression else "loo"),
        verbose=int(args.verbose and args.output != "-"), task=plan.task,
        n_jobs=args.n_jobs,
    )
    order = np.lexsort((np.arange(len(scores)), -scores))
    n_issues = int(issues.sum())
    if args.model == "hgb" and not regression and (args.method or "loo") == "loo":
        console.note("with --model hgb the leave-one-out probabilities keep every tree's "
                     "splits, so few rows are flagged as issues; the score still ranks "
                     "them (check the top rows), or use --method cross_val (5 refits).")
    console.say(
        f"{n_issues} of {table.n_rows} rows ({100.0 * n_issues / table.n_rows:.1f}%) "
        + ("have a suspicious target value." if regression else "look mislabelled.")
    )

    def cell(v):  # an output CSV cell: numbers in the input's decimal mark
        return num(v, table.decimal) if regression else str(v)

    if args.output:
        extra = unique_names(table.header,
                             ["row", "score", "given_label", "suggested_label", "issue"])
        out_rows = [
            cells + [str(i), num(scores[i], table.decimal), cell(y[i]), cell(suggested[i]),
                     str(bool(issues[i]))]
            for i, cells in zip(order, table.raw_rows(order))
        ]
        write_csv(args.output, table.header + extra, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"wrote all {table.n_rows} rows ranked by suspicion to {args.output}")
    shown = order[: args.show]
    if args.output != "-" and len(shown):
        keep = _display_columns(table, plan)
        rows = [
            [str(i), scores[i], _cell(y[i]), _cell(suggested[i]), "yes" if issues[i] else ""]
            + [table.cell(i, c) for c in keep]
            for i in shown
        ]
        console.say(f"\nmost suspicious {len(shown)} rows:")
        console.say(format_table(["row", "score", "given", "suggested", "issue"] + keep, rows))
        if not args.output:
            console.say("\n(use --output FILE.csv to save every row with its score)")
    if args.plot:
        _plot_label_issues(args, table, scores, issues, n_issues, console)
    return EXIT_OK


def _plot_label_issues(args, table, scores, issues, n_issues, console):
    from skinfluence.plot import plot_value_distribution

    def draw(ax):
        plot_value_distribution(scores, np.where(issues, "flagged", "not flagged"), ax=ax)
        ax.set_xlabel("suspicion score (higher = label more likely wrong)")
        ax.set_title(f"{args.data}: {n_issues} of {table.n_rows} rows flagged")

    save_plot(args.plot, draw, console)


# --------------------------------------------------------------------------- explain
def explain_row(X, y, estimator, row, *, k=10, against="prediction", task="classification",
                verbose=0, approximation="auto", n_jobs=None):
    """Fit ``estimator`` on all rows and explain the prediction for ``row``.

    Returns ``(kinds, explained, predicted)``: ``kinds`` maps a heading to
    ``(indices, values)`` of the top ``k`` training rows.  For classifiers,
    and for regressors with ``against="label"``, the values are influences on
    the loss of the explained label (positive: the training row helps).  For
    a regressor's prediction they are each row's contribution to the
    predicted value: minus its change when the row is removed.  ``approximation`` is
    that of :class:`~skinfluence.InfluenceFunctions` (``"boostin"`` for ``--model hgb``).
    """
    from skinfluence import InfluenceFunctions

    inf = InfluenceFunctions(estimator, approximation=approximation, verbose=verbose,
                             n_jobs=n_jobs)
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
    # one query: its whole row, ordered here so that equal values list by row number
    # (explain orders equal values by its blocks of rows)
    influence = np.asarray(inf.transform(x, np.asarray([target], dtype=y.dtype))[0])
    k = min(k, len(influence))
    helpful = np.argsort(-influence, kind="stable")[:k]
    harmful = np.argsort(influence, kind="stable")[:k]
    kinds = {"helpful": (helpful, influence[helpful]), "harmful": (harmful, influence[harmful])}
    return kinds, target, predicted


# rows above which --model forest's explain (exact regrowth) gets a note on its cost
_FOREST_QUICK_ROWS = 1000

# what "refit without the training row" means for the tree ensembles of --model
_TREE_MEANING = {
    "forest": "(the forest is regrown exactly without the training row, each tree on its own "
    "bootstrap sample:\nthe refit with the same random draws, one draw of a random refit)",
    "hgb": "(BoostIn approximation: each tree keeps its splits and its leaves move by the "
    "training row's own\ngradient at that iteration; an estimate, not a refit)",
}

# value --method influence: what the removal of a row means for the tree ensembles
_VALUE_TREE_MEANING = {
    "forest": "each row's value is the rise of the mean validation loss when every tree is "
    "regrown exactly without it, on its own bootstrap draws (the refit with the same random "
    "draws).",
    "hgb": "each row's value is the LeafInfluence estimate of the rise of the mean validation "
    "loss without it: the trees keep their splits, the leaf values move (an estimate, not a "
    "refit).",
}


def _forest_cost_note(n):
    return (f"note: --model forest regrows every tree once per training row (the work grows "
            f"with the square of the rows): on {n} rows this takes minutes (about 2 minutes at "
            f"2,000 rows on 2 cores), longer when the features repeat values and the\n"
            f"      target is not whole numbers (then the row's removal re-sorts tied "
            f"values: about\n      20 minutes of one core at 6,366 rows, 10 on two). --model hgb "
            f"answers in seconds; progress is\n      shown below.")


_EXPLAIN_HEADINGS = {
    "helpful": "most helpful training rows",
    "harmful": "most harmful training rows",
    "raises": "training rows that raise the prediction most",
    "lowers": "training rows that lower the prediction most",
}


def cmd_explain(args):
    console = Console(args.quiet, data_on_stdout=args.output == "-")
    table, plan, X, y = _load(args, console)
    task = plan.task
    n = table.n_rows
    row = args.row
    if not 0 <= row < n:
        # no counting from the end: -1 is too easily a typo or a "no row" marker
        raise UsageError(f"--row {row} is out of range: the file has {n} data rows, "
                         f"numbered 0 to {n - 1} (header not counted).")
    if task == "classification":
        _check_class_sizes(y, console)
    estimator = _model(args, task, X, y, console)
    name = args.model or default_model(task)
    k = min(args.k, n - 1)
    if name == "forest" and n > _FOREST_QUICK_ROWS:
        console.progress(_forest_cost_note(n))
    console.progress(f"fitting {type(estimator).__name__} and computing influence on row {row} ...")
    kinds, target, predicted = explain_row(
        X, y, estimator, row, k=k, against=args.against, task=task,
        verbose=int(not args.quiet and args.output != "-"),
        approximation=influence_approximation(name), n_jobs=args.n_jobs,
    )
    what = "the model's prediction" if args.against == "prediction" else "the given label"
    console.say(
        f"row {row}: given {plan.target} = {table.cell(row, plan.target)}, "
        f"predicted {fmt(predicted)}; explaining {what} ({fmt(target)})."
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
    if name in _TREE_MEANING:
        console.say(_TREE_MEANING[name])
    _show_explanation(console, table, plan, y, row, kinds, value_name)
    if args.output:
        out_rows = [
            [kind, str(rank), str(j), num(v, table.decimal)] + cells
            for kind, (idx, val) in kinds.items()
            for rank, j, v, cells in zip(range(1, len(idx) + 1), idx, val, table.raw_rows(idx))
        ]
        extra = unique_names(table.header, ["kind", "rank", "row", value_name])
        write_csv(args.output, extra + table.header, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"\nwrote the {len(out_rows)} rows to {args.output}")
    if args.plot:
        _plot_explanation(args.plot, kinds, y, row, value_name, console)
    return EXIT_OK


def _show_explanation(console, table, plan, y, row, kinds, value_name):
    """The helpful and harmful (or raising and lowering) rows as text tables."""
    keep = _display_columns(table, plan)
    itself = False
    for kind, (idx, val) in kinds.items():
        rows = []
        for rank, (j, v) in enumerate(zip(idx, val), start=1):
            j = int(j)
            itself |= j == row
            rows.append([str(rank), f"{j}*" if j == row else str(j), float(v), _cell(y[j])]
                        + [table.cell(j, c) for c in keep])
        console.say(f"\n{_EXPLAIN_HEADINGS[kind]}:")
        console.say(format_table(["rank", "row", value_name, plan.target] + keep, rows))
    if itself:
        console.say(f"\n* row {row} itself: it is part of the training data too.")


def _plot_explanation(path, kinds, y, row, value_name, console):
    from skinfluence.plot import plot_explanation

    (top_kind, (top_i, top_v)), (low_kind, (low_i, low_v)) = kinds.items()
    bunch = {"helpful_indices": top_i[None], "helpful_values": top_v[None],
             "harmful_indices": low_i[None], "harmful_values": low_v[None]}

    def draw(ax):
        plot_explanation(bunch, y_train=y, ax=ax)
        ax.set_xlabel(value_name)
        ax.set_title(f"row {row}: {_EXPLAIN_HEADINGS[top_kind]} (blue) and "
                     f"{_EXPLAIN_HEADINGS[low_kind].split(' ', 1)[1]} (red)", fontsize=9)

    save_plot(path, draw, console)


# --------------------------------------------------------------------------- value
def value_rows(X, y, method, estimator, *, X_val=None, y_val=None, n_neighbors=5,
               random_state=0, verbose=0, task="classification", n_jobs=None):
    """Data value of every row (higher = more helpful) with the given valuation method.

    ``estimator`` is unused by ``knn-shapley``, whose utility is that of a KNN
    classifier or, with ``task="regression"``, a KNN regressor.
    """
    import skinfluence

    if method == "knn-shapley":
        valuer = skinfluence.KNNShapley(n_neighbors=n_neighbors, task=task)
    elif method == "data-oob":
        if _is_bagged_forest(estimator):  # the forest's own trees are the bag: one fit
            from sklearn.base import clone
            from sklearn.frozen import FrozenEstimator

            estimator = FrozenEstimator(clone(estimator).fit(X, y))
        valuer = skinfluence.DataOOB(estimator, random_state=random_state)
    elif method == "loo":
        valuer = skinfluence.LOOValuation(estimator)
    elif method == "tmc-shapley":
        valuer = skinfluence.TMCShapley(estimator)
    elif method == "influence":  # "auto": exact regrowth for forests, LeafInfluence for hgb
        valuer = skinfluence.InfluenceValuation(estimator)
    else:
        raise UsageError(f"unknown method {method!r}; choose from {', '.join(VALUE_METHODS)}.")
    params = valuer.get_params()
    if "verbose" in params:
        valuer.set_params(verbose=verbose)
    if "random_state" in params:
        valuer.set_params(random_state=random_state)
    if method == "influence":  # threads over blocks of rows; other valuers fit in processes
        valuer.set_params(n_jobs=n_jobs)
    valuer.fit(X, y, X_val=X_val, y_val=y_val)
    return np.asarray(valuer.values_, dtype=np.float64)


def _is_bagged_forest(estimator):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    return isinstance(estimator, (RandomForestClassifier, RandomForestRegressor)) and \
        estimator.bootstrap


def _check_value_options(args):
    if args.method in _NEEDS_VALIDATION and not args.validation:
        raise UsageError(f"--method {args.method} scores the model on a validation set: pass "
                         "--validation VAL.csv (same columns), or use knn-shapley or data-oob.")
    if args.method == "data-oob" and args.validation:
        raise UsageError("data-oob values rows by their out-of-bag scores and uses no "
                         "validation set; drop --validation.")


def cmd_value(args):
    console = Console(args.quiet, data_on_stdout=args.output == "-")
    _check_value_options(args)
    if args.dask or args.scheduler:  # a file larger than memory, read by dask: _dask.py
        from ._dask import run_dask

        return run_dask(args, console, "value")
    table, plan, X, y = _load(args, console)
    task = plan.task
    if task == "classification":
        _check_class_sizes(y, console)
    X_val = y_val = None
    if args.validation:
        _, X_val, y_val = load_validation(args.validation, plan, task=task,
                                          delimiter=args.delimiter, decimal=args.decimal)
        console.progress(f"validation: {len(y_val)} rows from {args.validation}")
    # knn-shapley values rows for a KNN model of its own
    estimator = None if args.method == "knn-shapley" else _model(args, task, X, y, console)
    if args.method == "knn-shapley" and X_val is None:
        what = "predict the targets of" if task == "regression" else "classify"
        console.note(f"no --validation file: each row is valued by how it helps {what} the "
                     "other rows.")
    if args.method == "influence" and args.model in _VALUE_TREE_MEANING:
        if args.model == "forest" and table.n_rows > _FOREST_QUICK_ROWS:
            console.progress(_forest_cost_note(table.n_rows))
        console.note(_VALUE_TREE_MEANING[args.model])
    console.progress(f"valuing every row with {args.method} ...")
    values = value_rows(X, y, args.method, estimator, X_val=X_val, y_val=y_val,
                        n_neighbors=args.n_neighbors, random_state=args.random_state,
                        verbose=int(not args.quiet and args.output != "-"), task=task,
                        n_jobs=args.n_jobs)
    order = np.lexsort((np.arange(len(values)), values))  # least valuable first
    console.say(f"valued {table.n_rows} rows with {args.method} (higher = more helpful); "
                f"median {np.median(values):.4g}, {int((values < 0).sum())} negative.")
    if args.output:
        extra = unique_names(table.header, ["row", "value", "rank"])
        out_rows = [cells + [str(i), num(values[i], table.decimal), str(r)]
                    for r, (i, cells) in enumerate(zip(order, table.raw_rows(order)), start=1)]
        write_csv(args.output, table.header + extra, out_rows, table.delimiter)
        if args.output != "-":
            console.say(f"wrote all rows, least valuable first, to {args.output}")
    if args.output != "-" and args.show:
        keep = _display_columns(table, plan)
        show = min(args.show, table.n_rows)
        for title, idx in (("least", order[:show]), ("most", order[::-1][:show])):
            rows = [[str(i), values[i], _cell(y[i])] + [table.cell(i, c) for c in keep]
                    for i in idx]
            console.say(f"\n{title} valuable {len(idx)} rows:")
            console.say(format_table(["row", "value", plan.target] + keep, rows))
    if args.plot:
        from skinfluence.plot import plot_value_distribution

        def draw(ax):
            plot_value_distribution(values, ax=ax)
            ax.set_title(f"{args.data}: {args.method} values of {table.n_rows} rows")

        save_plot(args.plot, draw, console)
    return EXIT_OK
