"""The models behind ``--model`` and the task (classification or regression) they serve."""

from ._render import UsageError

__all__ = ["MODELS", "CLASSIFIERS_ONLY", "REGRESSORS_ONLY", "default_model", "make_model",
           "lasso_alpha"]

MODELS = {
    "logistic": "logistic regression (default for classification; exact influence)",
    "mlp": "neural network, 32 tanh units (MLPClassifier / MLPRegressor; approximate)",
    "linear-svm": "linear support vector machine (LinearSVC)",
    "forest": "random forest, 100 trees (RandomForestClassifier / Regressor, regression "
    "leaves of at least 5 rows): explain regrows every tree exactly without the row on the "
    "same bootstrap draws, label-issues uses the out-of-bag predictions of one fit",
    "hgb": "histogram gradient boosting, 100 iterations, no early stopping "
    "(HistGradientBoostingClassifier / Regressor): explain uses the BoostIn approximation "
    "(splits kept, each tree's leaves moved by the row's own gradient), label-issues the "
    "first-order leave-one-out outputs with splits kept",
    "ridge": "ridge regression, alpha chosen by exact leave-one-out unless --alpha "
    "(default for regression)",
    "kernel-ridge": "kernel ridge regression (RBF kernel, alpha 1 unless --alpha; exact "
    "influence), for a numeric target",
    "lasso": "L1 penalty: Lasso for a numeric target (alpha chosen by 5-fold LassoCV unless "
    "--alpha; exact influence), L1 logistic regression for labels (C = 1 / --alpha, "
    "default 1; saga)",
}
CLASSIFIERS_ONLY = ("logistic", "linear-svm")
REGRESSORS_ONLY = ("ridge", "kernel-ridge")


def default_model(task):
    """The ``--model`` used when none is given."""
    return "ridge" if task == "regression" else "logistic"


def make_model(name, task="classification", random_state=0, *, X=None, y=None, alpha=None):
    """The estimator behind ``--model NAME`` (features arrive already scaled / one-hot).

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    task : {"classification", "regression"}, default="classification"
    random_state : int, default=0
        Seed of the models that use randomness.
    X, y : ndarray, default=None
        Training data; ``ridge`` without ``alpha`` needs them to choose its penalty.
    alpha : float, default=None
        Penalty of ``ridge`` (None: the one with the smallest exact leave-one-out error,
        :func:`ridge_alpha`), ``kernel-ridge`` (None: 1) or ``lasso`` (regression, None:
        :func:`lasso_alpha`; classification: ``C = 1 / alpha``, None: ``C = 1``).

    Returns
    -------
    estimator : unfitted scikit-learn estimator
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.svm import LinearSVC

    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(MODELS)}.")
    if name in TREE_MODELS:
        return _tree_model(name, task, random_state)
    if task == "regression":
        if name == "ridge":
            if alpha is None:
                if X is None or y is None:
                    raise ValueError("make_model('ridge') chooses alpha from the data: pass "
                                     "X and y, or alpha.")
                alpha = ridge_alpha(X, y).alpha
            return Ridge(alpha=alpha)
        if name == "kernel-ridge":
            from sklearn.kernel_ridge import KernelRidge

            return KernelRidge(alpha=1.0 if alpha is None else alpha, kernel="rbf")
        if name == "lasso":
            from sklearn.linear_model import Lasso

            if alpha is None:
                if X is None or y is None:
                    raise ValueError("make_model('lasso') chooses alpha from the data: pass "
                                     "X and y, or alpha.")
                alpha = lasso_alpha(X, y)
            # influence assumes the optimum: coordinate descent to a tight dual gap
            return Lasso(alpha=alpha, tol=1e-10, max_iter=100_000)
        if name == "mlp":
            return MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs",
                                alpha=1.0, tol=1e-6, max_iter=2000, random_state=random_state)
        raise UsageError(f"--model {name} is a classifier, but the target is treated as "
                         "numbers (regression): use --model ridge or mlp, or --task "
                         "classification to use the target's values as class labels.")
    if name in REGRESSORS_ONLY:
        raise UsageError(f"--model {name} is a regression model, but the target is treated as "
                         "class labels: pass --task regression to use it on a numeric target.")
    if name == "logistic":
        # Influence assumes the fit is at the optimum: converge tightly (cheap here).
        return LogisticRegression(tol=1e-8, max_iter=10_000)
    if name == "lasso":
        # L1 logistic regression; influence assumes the optimum: saga to a tight tolerance
        return LogisticRegression(l1_ratio=1.0, C=1.0 if alpha is None else 1.0 / alpha,
                                  solver="saga", tol=1e-8, max_iter=100_000)
    if name == "mlp":
        # lbfgs converges (deterministically) on small tabular data and tanh keeps the
        # Hessian smooth; influence needs both
        return MLPClassifier(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs",
                             alpha=1.0, tol=1e-6, max_iter=2000, random_state=random_state)
    return LinearSVC(C=1.0)


# tree ensembles serve both tasks; their influence approximation (InfluenceFunctions)
TREE_MODELS = {"forest": "exact", "hgb": "boostin"}


def _tree_model(name, task, random_state):
    """``--model forest`` / ``hgb`` for ``task``: seeded, so a run can be repeated and the
    forest's bootstrap draws replayed; boosting without early stopping, so that every row
    grew the trees (rows held out for validation would get no influence)."""
    regression = task == "regression"
    if name == "forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        # bootstrap (the default): label-issues reads the out-of-bag predictions.  Regression
        # leaves keep 5 rows (randomForest's default in R): smoother, and shallower trees
        # are regrown faster
        if regression:
            return RandomForestRegressor(n_estimators=100, min_samples_leaf=5, bootstrap=True,
                                         random_state=random_state)
        return RandomForestClassifier(n_estimators=100, bootstrap=True,
                                      random_state=random_state)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    return cls(max_iter=100, early_stopping=False, random_state=random_state)


def influence_approximation(name):
    """The ``approximation`` of :class:`~skinfluence.InfluenceFunctions` the command line
    uses with ``--model NAME`` (``"auto"``: the library's default)."""
    return TREE_MODELS.get(name, "auto")


def ridge_alpha(X, y):
    """The penalty of the default regression model: smallest exact leave-one-out error.

    :func:`skinfluence.linalg.ridge_loo_path` over its default grid (41 values,
    log-spaced from ``1e-6`` to ``1e2`` times the mean eigenvalue of the centred
    ``X^T X``); returns its Bunch (``alpha``, ``loo_mse``, ``at_edge``, ...).
    """
    from skinfluence.linalg import ridge_loo_path

    return ridge_loo_path(X, y)


def lasso_alpha(X, y):
    """The penalty of ``--model lasso``: ``LassoCV(cv=5)``'s ``alpha_`` (100 values on
    its default path; contiguous folds, so deterministic)."""
    from sklearn.linear_model import LassoCV

    return float(LassoCV(cv=5).fit(X, y).alpha_)
