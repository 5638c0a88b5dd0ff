"""Plots for influence, cleaning and valuation results.

Needs matplotlib: ``pip install "skinfluence[plot]"``.

Every function draws into an existing :class:`matplotlib.axes.Axes` when
given ``ax`` (or a figure for the image grid) and returns what it drew on, so
plots compose with the rest of a matplotlib figure.

* :func:`plot_explanation`: most helpful / harmful training examples for one
  prediction, as images when the features are images, else as bars.
* :func:`plot_cleaning_curve`: fraction of flipped labels found against the
  fraction of rows checked, in suspicion order.
* :func:`plot_value_distribution`: histogram of data values, optionally split
  into groups (e.g. clean vs flipped).
* :func:`plot_retraining`: influence-predicted against actual effect of
  removing each training example.
* :func:`plot_removal_curve`: held-out score against the fraction of training rows
  removed, from :func:`skinfluence.metrics.removal_curve`.
* :func:`plot_faithfulness`: predicted against retrained loss changes, from
  :func:`skinfluence.metrics.linear_datamodeling_score` or
  :func:`skinfluence.metrics.loo_correlation` (``return_details=True``).
"""

import numpy as np

__all__ = [
    "plot_explanation",
    "plot_cleaning_curve",
    "plot_value_distribution",
    "plot_retraining",
    "plot_removal_curve",
    "plot_faithfulness",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "skinfluence.plot needs matplotlib; install it with `pip install skinfluence[plot]`."
        ) from None
    return plt


def _get_ax(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _row_of(explanation, key, index):
    arr = np.asarray(explanation[key])
    if arr.ndim == 1:
        arr = arr[None, :]
    if not 0 <= index < arr.shape[0]:
        raise ValueError(
            f"index={index} is out of range: the explanation covers {arr.shape[0]} sample(s)."
        )
    return arr[index]


def plot_explanation(
    explanation,
    X_train=None,
    y_train=None,
    *,
    index=0,
    k=None,
    image_shape=None,
    query=None,
    query_label=None,
    cmap="gray_r",
    fig=None,
    ax=None,
):
    """Show the most helpful and most harmful training examples for one prediction.

    Parameters
    ----------
    explanation : Bunch or dict
        Output of :meth:`skinfluence.InfluenceFunctions.explain`, with keys
        ``helpful_indices``, ``helpful_values``, ``harmful_indices`` and
        ``harmful_values`` (each of shape ``(n_samples, k)``).
    X_train : array-like of shape (n_train, n_features), default=None
        Training features; needed with ``image_shape`` to draw the images.
    y_train : array-like of shape (n_train,), default=None
        Training labels, shown next to each example.
    index : int, default=0
        Which explained sample (row of the explanation) to show.
    k : int, default=None
        How many helpful and harmful examples to show (default: all in the
        explanation).
    image_shape : tuple of int, default=None
        When given, each training row is reshaped to this shape and drawn as
        an image (``(8, 8)`` for scikit-learn's digits, ``(28, 28)`` for
        MNIST, ``(h, w, 3)`` for colour images).  Otherwise a horizontal bar
        chart of the influence values is drawn.
    query : array-like of shape (n_features,), default=None
        The explained sample itself; with ``image_shape`` it is drawn in an
        extra first column.
    query_label : str, default=None
        Caption of the explained sample (e.g. ``"pred 8, true 1"``).
    cmap : str, default="gray_r"
        Colour map for single-channel images.
    fig : matplotlib Figure, default=None
        Figure to draw the image grid into (a new one when None).
    ax : matplotlib Axes, default=None
        Axes for the bar chart (a new one when None).

    Returns
    -------
    fig_or_ax : matplotlib Figure (images) or Axes (bar chart)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plot import plot_explanation
    >>> expl = {"helpful_indices": [[4, 2]], "helpful_values": [[0.3, 0.1]],
    ...         "harmful_indices": [[7, 1]], "harmful_values": [[-0.2, -0.05]]}
    >>> ax = plot_explanation(expl, y_train=np.arange(10) % 3)
    >>> len(ax.patches)
    4
    """
    helpful_idx, helpful_val, harmful_idx, harmful_val = _explanation_rows(explanation, index, k)
    y_train = None if y_train is None else np.asarray(y_train)

    def label(j):
        return f"#{j}" if y_train is None else f"#{j} (y={y_train[j]})"

    if image_shape is None:
        return _explanation_bars(_get_ax(ax), helpful_idx, helpful_val, harmful_idx,
                                 harmful_val, label)
    X_train, query = _check_images(X_train, image_shape, query)
    return _explanation_images(fig, X_train, (helpful_idx, helpful_val),
                               (harmful_idx, harmful_val), label, image_shape, query,
                               query_label, cmap)


def _explanation_rows(explanation, index, k):
    """Helpful and harmful indices and values of row ``index``, the first ``k`` of each."""
    helpful_idx = _row_of(explanation, "helpful_indices", index).astype(int)
    helpful_val = _row_of(explanation, "helpful_values", index).astype(float)
    harmful_idx = _row_of(explanation, "harmful_indices", index).astype(int)
    harmful_val = _row_of(explanation, "harmful_values", index).astype(float)
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be at least 1; got {k}.")
        helpful_idx, helpful_val = helpful_idx[:k], helpful_val[:k]
        harmful_idx, harmful_val = harmful_idx[:k], harmful_val[:k]
    return helpful_idx, helpful_val, harmful_idx, harmful_val


def _explanation_bars(ax, helpful_idx, helpful_val, harmful_idx, harmful_val, label):
    """Horizontal bars: helpful examples (blue) on top, then harmful ones (red)."""
    idx = np.concatenate([helpful_idx, harmful_idx[::-1]])
    val = np.concatenate([helpful_val, harmful_val[::-1]])
    pos = np.arange(len(idx))[::-1]
    colors = ["tab:blue"] * len(helpful_idx) + ["tab:red"] * len(harmful_idx)
    ax.barh(pos, val, color=colors)
    ax.set_yticks(pos)
    ax.set_yticklabels([label(j) for j in idx])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("influence (positive: helps the prediction)")
    ax.set_title("Most helpful (blue) and harmful (red) training examples")
    return ax


def _check_images(X_train, image_shape, query):
    """``X_train`` and ``query`` as arrays whose rows reshape to ``image_shape``."""
    if X_train is None:
        raise ValueError("X_train is required to draw training examples as images.")
    X_train = np.asarray(X_train)
    size = int(np.prod(image_shape))
    if X_train.ndim != 2 or X_train.shape[1] != size:
        raise ValueError(
            f"image_shape={tuple(image_shape)} needs {size} features per row; "
            f"X_train has shape {X_train.shape}."
        )
    if query is not None:
        query = np.asarray(query).ravel()
        if query.size != size:
            raise ValueError(
                f"query has {query.size} features; image_shape={tuple(image_shape)} needs {size}."
            )
    return X_train, query


def _explanation_images(fig, X_train, helpful, harmful, label, image_shape, query,
                        query_label, cmap):
    """Image grid: helpful examples on the top row, harmful ones below, the query first."""
    (helpful_idx, helpful_val), (harmful_idx, harmful_val) = helpful, harmful
    plt = _pyplot()
    n_cols = max(len(helpful_idx), len(harmful_idx), 1)
    offset = int(query is not None)
    if fig is None:
        fig = plt.figure(figsize=(1.6 * (n_cols + offset), 3.6))
    axes = fig.subplots(2, n_cols + offset, squeeze=False, gridspec_kw={"wspace": 0.4})
    single = cmap if len(image_shape) == 2 else None
    if offset:
        axes[0, 0].imshow(query.reshape(image_shape), cmap=single)
        axes[0, 0].set_title("explained" if query_label is None else str(query_label),
                             fontsize=8)
        axes[0, 0].set_xticks([])
        axes[0, 0].set_yticks([])
        axes[1, 0].set_axis_off()
    for r, (kind, idxs, vals) in enumerate(
        (("helpful", helpful_idx, helpful_val), ("harmful", harmful_idx, harmful_val))
    ):
        for c in range(n_cols):
            a = axes[r, c + offset]
            a.set_xticks([])
            a.set_yticks([])
            if c >= len(idxs):
                a.set_axis_off()
                continue
            j = idxs[c]
            a.imshow(X_train[j].reshape(image_shape), cmap=single)
            a.set_title(f"{label(j)}\n{vals[c]:+.3g}", fontsize=8)
            for spine in a.spines.values():
                spine.set_edgecolor("tab:blue" if kind == "helpful" else "tab:red")
                spine.set_linewidth(2)
        axes[r, offset].set_ylabel(kind)
    fig.suptitle("Most helpful (top) and harmful (bottom) training examples")
    return fig


def plot_cleaning_curve(is_noisy, scores, *, label=None, baselines=True, ax=None):
    """Plot the fraction of noisy labels found against the fraction of rows checked.

    The rows are checked most suspicious first; the curve comes from
    :func:`skinfluence.cleaning.cleaning_curve` and its area is shown in the
    legend (0.5: random order).

    Parameters
    ----------
    is_noisy : array-like of bool, shape (n_samples,)
        True where the label really is wrong (e.g. the ``flipped`` mask of
        :func:`skinfluence.datasets.make_noisy_labels`).
    scores : array-like of shape (n_samples,) or dict of str to array-like
        Suspicion scores (higher = checked first), e.g.
        ``InfluenceCleaner.scores_``; a dict draws one curve per method,
        keyed by its name.
    label : str, default=None
        Legend entry for a single curve.
    baselines : bool, default=True
        Also draw random checking order and the perfect ranking.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plot import plot_cleaning_curve
    >>> rng = np.random.default_rng(0)
    >>> noisy = rng.random(200) < 0.1
    >>> ax = plot_cleaning_curve(noisy, {"good": noisy + rng.random(200)})
    >>> ax.get_xlabel()
    'fraction of rows checked'
    """
    from skinfluence.cleaning import cleaning_curve

    ax = _get_ax(ax)
    curves = scores if isinstance(scores, dict) else {label: scores}
    is_noisy = np.asarray(is_noisy)
    for name, s in curves.items():
        checked, found, auc = cleaning_curve(is_noisy, s)
        text = f"AUC {auc:.3f}" if name is None else f"{name} (AUC {auc:.3f})"
        ax.plot(checked, found, label=text, linewidth=2)
    if baselines:
        rate = np.mean(is_noisy.astype(bool))
        ax.plot([0, 1], [0, 1], linestyle=":", color="gray", label="random order")
        ax.plot([0, rate, 1], [0, 1, 1], linestyle="--", color="gray", label="perfect ranking")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("fraction of rows checked")
    ax.set_ylabel("fraction of noisy labels found")
    ax.legend(loc="lower right")
    return ax


def plot_value_distribution(values, groups=None, *, bins=40, ax=None):
    """Histogram of data values, optionally one per group.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Data values, e.g. ``values_`` of a valuation estimator.
    groups : array-like of shape (n_samples,) or dict, default=None
        Group of each row (e.g. ``np.where(flipped, "flipped", "clean")``); a
        bool array is shown as "flagged"/"other".
    bins : int, default=40
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plot import plot_value_distribution
    >>> ax = plot_value_distribution(np.linspace(-1, 1, 50), np.arange(50) < 10)
    >>> sorted(t.get_text() for t in ax.get_legend().get_texts())
    ['flagged', 'other']
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-d; got shape {values.shape}.")
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"values contains {int((~finite).sum())} NaN or infinite entries.")
    ax = _get_ax(ax)
    edges = np.histogram_bin_edges(values, bins=bins)
    if groups is None:
        ax.hist(values, bins=edges, color="tab:blue")
    else:
        groups = np.asarray(groups)
        if groups.shape != values.shape:
            raise ValueError(
                f"groups has shape {groups.shape}; expected {values.shape} like values."
            )
        if groups.dtype == bool:
            groups = np.where(groups, "flagged", "other")
        for g in np.unique(groups):
            ax.hist(values[groups == g], bins=edges, alpha=0.6, label=str(g))
        ax.legend()
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("data value (higher = more helpful)")
    ax.set_ylabel("number of rows")
    return ax


def plot_retraining(predicted, actual, *, ax=None, label=None):
    """Scatter the predicted against the actual effect of removing training examples.

    The usual fidelity check of an influence method: for a few training
    examples, retrain without each one and compare the measured change with
    the predicted change.  Points on the diagonal are exact.

    Parameters
    ----------
    predicted : array-like of shape (n,)
        Predicted effects (e.g. a column of
        :meth:`skinfluence.InfluenceFunctions.transform`).
    actual : array-like of shape (n,)
        Effects measured by retraining.
    ax : matplotlib Axes, default=None
    label : str, default=None
        Legend entry for the points.

    Returns
    -------
    ax : matplotlib Axes
        The title reports the Pearson and Spearman correlations.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plot import plot_retraining
    >>> ax = plot_retraining([0.1, 0.2, 0.35], [0.11, 0.19, 0.33])
    >>> ax.get_title().startswith("Pearson")
    True
    """
    from scipy.stats import pearsonr, spearmanr

    predicted = np.asarray(predicted, dtype=float).ravel()
    actual = np.asarray(actual, dtype=float).ravel()
    if predicted.shape != actual.shape:
        raise ValueError(
            f"predicted and actual must have the same length; got {predicted.size} "
            f"and {actual.size}."
        )
    if predicted.size < 2:
        raise ValueError("need at least two points to compare.")
    if not (np.isfinite(predicted).all() and np.isfinite(actual).all()):
        raise ValueError("predicted and actual must be finite.")
    ax = _get_ax(ax)
    ax.scatter(actual, predicted, s=14, alpha=0.8, label=label)
    lo = min(actual.min(), predicted.min())
    hi = max(actual.max(), predicted.max())
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="gray", linestyle="--",
            linewidth=1)
    ax.set_xlabel("actual change (retrained)")
    ax.set_ylabel("predicted change")
    if np.ptp(predicted) > 0 and np.ptp(actual) > 0:
        r = pearsonr(actual, predicted)[0]
        rho = spearmanr(actual, predicted)[0]
        ax.set_title(f"Pearson r = {r:.3f}, Spearman rho = {rho:.3f}")
    else:
        ax.set_title("Pearson r = n/a (constant values)")
    if label is not None:
        ax.legend()
    return ax


def plot_removal_curve(fractions, scores, *, label=None, ax=None):
    """Draw a removal curve: held-out score against the fraction of rows removed.

    Call once per method and order (``"high"`` / ``"low"``) on the same Axes to compare
    them.

    Parameters
    ----------
    fractions, scores : array-like of shape (n_fractions,)
        Output of :func:`skinfluence.metrics.removal_curve`.
    label : str, default=None
        Legend entry of the curve.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plot import plot_removal_curve
    >>> ax = plot_removal_curve([0.0, 0.1, 0.2], [0.95, 0.93, 0.90], label="high first")
    >>> len(ax.lines)
    1
    """
    fractions = np.asarray(fractions, dtype=float).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if fractions.shape != scores.shape:
        raise ValueError(f"fractions and scores must have the same length; got "
                         f"{fractions.size} and {scores.size}.")
    ax = _get_ax(ax)
    ax.plot(fractions, scores, marker="o", markersize=4, label=label)
    ax.set_xlabel("fraction of training rows removed")
    ax.set_ylabel("held-out score of the retrained model")
    if label is not None:
        ax.legend()
    return ax


def plot_faithfulness(details, *, test_point=None, ax=None, label=None):
    """Scatter a method's predicted loss changes against those of retrained models.

    Parameters
    ----------
    details : Bunch
        Output of :func:`skinfluence.metrics.linear_datamodeling_score` or
        :func:`skinfluence.metrics.loo_correlation` with ``return_details=True``.
    test_point : int, default=None
        Draw only this test point (an LDS is a correlation per test point);
        ``None``: every (subset or left-out point, test point) pair.
    ax : matplotlib Axes, default=None
    label : str, default=None
        Legend entry for the points.

    Returns
    -------
    ax : matplotlib Axes
        Drawn by :func:`plot_retraining`; for an LDS the title also reports the score.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skinfluence.plot import plot_faithfulness
    >>> details = Bunch(score=0.9, predicted=np.array([[0.1], [0.3], [0.2]]),
    ...                 actual=np.array([[0.12], [0.28], [0.25]]), removed=None)
    >>> ax = plot_faithfulness(details)
    >>> ax.get_title().startswith("LDS")
    True
    """
    predicted = np.asarray(details["predicted"], dtype=float)
    actual = np.asarray(details["actual"], dtype=float)
    lds = "removed" in details  # LDS: (n_subsets, n_test); LOO: (n_test, n_left_out)
    if test_point is not None:
        if predicted.ndim != 2:
            raise ValueError("test_point needs per-test-point details (a matrix method).")
        axis = 1 if lds else 0
        if not 0 <= test_point < predicted.shape[axis]:
            raise ValueError(f"test_point={test_point} is out of range.")
        predicted = np.take(predicted, test_point, axis=axis)
        actual = np.take(actual, test_point, axis=axis)
    ax = plot_retraining(predicted, actual, ax=ax, label=label)
    if lds:
        what = ("Spearman of this point" if test_point is not None
                else "mean Spearman per test point")
        score = (details["scores"][test_point] if test_point is not None
                 else details["score"])
        ax.set_title(f"LDS = {score:.3f} ({what})\n{ax.get_title()}")
    ax.set_xlabel("actual loss change (retrained)")
    ax.set_ylabel("predicted loss change")
    return ax
