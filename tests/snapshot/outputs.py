"""The numbers every public estimator produces on small, fixed, deterministic inputs.

:func:`compute_outputs` runs every case registered below and returns a flat
``{"family/case/output": ndarray}`` dict; ``make_snapshot.py`` saves it and
``tests/test_snapshot.py`` compares a fresh run with the saved copy.

Each case is a small function: data, estimator, then calls to the public API
whose results are returned by name.  When the API changes shape (a method
renamed, a tuple that becomes a Bunch), update the *call* in the case (or in
the shared ``_*_outputs`` helpers) so that it returns the same numbers under
the same names; the saved file is not touched.  A case that can no longer
produce an output it used to is a failed comparison, not a reason to
regenerate.

All work runs with one BLAS thread and one numba thread (:func:`single_thread`)
so that reductions always add in the same order.
"""

import contextlib
import csv
import io
import os
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp

# name -> function returning {output name: array-like}
CASES = {}


def case(name):
    """Register ``func`` as the case ``name`` (its outputs are keyed ``name/<output>``)."""

    def register(func):
        if name in CASES:
            raise ValueError(f"duplicate snapshot case {name!r}")
        CASES[name] = func
        return func

    return register


# ---------------------------------------------------------------------- conversion
def as_array(value):
    """A plain ndarray storable in an ``.npz`` without pickling.

    Sparse matrices become dense; strings and objects become unicode arrays.
    """
    if sp.issparse(value):
        value = value.toarray()
    arr = np.asarray(value)
    if arr.dtype == object:
        arr = arr.astype(str)
    if arr.dtype.kind == "i":
        arr = arr.astype(np.int64)
    return arr


@contextlib.contextmanager
def single_thread():
    """One BLAS thread and one numba thread: a fixed summation order."""
    import numba
    from threadpoolctl import threadpool_limits

    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        numba.set_num_threads(old)


def compute_case(name):
    """Outputs of one registered case, keyed ``name/<output>``."""
    with single_thread(), warnings.catch_warnings():
        # convergence and approximation warnings are part of the cases, not failures
        warnings.simplefilter("ignore")
        result = CASES[name]()
    out = {}
    for key, value in result.items():
        full = f"{name}/{key}"
        if case_of(full) != name:  # "a/b" + "c/d" must not read as case "a/b/c"
            raise ValueError(f"output {key!r} of case {name!r} reads as case {case_of(full)!r}")
        out[full] = as_array(value)
    return out


def compute_outputs(names=None):
    """Outputs of every registered case (or of ``names``): ``{key: ndarray}``."""
    out = {}
    for name in CASES if names is None else names:
        out.update(compute_case(name))
    return out


def case_of(key):
    """The case a key belongs to (the longest registered prefix)."""
    best = None
    for name in CASES:
        if key.startswith(name + "/") and (best is None or len(name) > len(best)):
            best = name
    return best


# --------------------------------------------------------------------------- data
def _standardize(X, ref):
    mu, sd = ref.mean(axis=0), ref.std(axis=0)
    sd[sd == 0] = 1.0
    return (X - mu) / sd


def _split(X, y, n_train, n_query, seed, n_features=None, scale=True):
    rng = np.random.RandomState(seed)
    idx = rng.permutation(len(y))[: n_train + n_query]
    X = X[idx] if n_features is None else X[idx][:, :n_features]
    y = y[idx]
    Xtr, Xq = X[:n_train], X[n_train:]
    if scale:
        Xtr, Xq = _standardize(Xtr, Xtr), _standardize(Xq, Xtr)
    return Xtr, y[:n_train], Xq, y[n_train:]


def breast_cancer(n_train=60, n_query=6, n_features=6, seed=0, scale=True):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return _split(X, y, n_train, n_query, seed, n_features, scale)


def wine(n_train=70, n_query=6, n_features=5, seed=0, scale=True):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    return _split(X, y, n_train, n_query, seed, n_features, scale)


def digits(n_train=100, n_query=10, seed=0, classes=(0, 1, 7)):
    """Three digit classes, 16 features (4x4 average pooling of the 8x8 images)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, classes)
    X = X[keep].reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    return _split(X, y[keep], n_train, n_query, seed)


def diabetes(n_train=60, n_query=6, n_features=5, seed=0):
    """Standardised features and the target divided by 100 (positive: GLMs fit it too)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    Xtr, ytr, Xq, yq = _split(X, y, n_train, n_query, seed, n_features)
    return Xtr, ytr / 100.0, Xq, yq / 100.0


def noisy(y, rate, seed=0):
    from skinfluence.datasets import make_noisy_labels

    return make_noisy_labels(y, rate, random_state=seed)


def nations(n_train=120, seed=0):
    """A fixed subset of the Nations training triples and a few test queries."""
    from skinfluence.datasets import load_nations

    data = load_nations()
    rng = np.random.RandomState(seed)
    train = data.train[np.sort(rng.permutation(data.train.shape[0])[:n_train])]
    # test triples whose head, relation and tail all occur in the subset
    seen_e = set(train[:, 0]) | set(train[:, 2])
    seen_r = set(train[:, 1])
    ok = [t for t in data.test if t[0] in seen_e and t[2] in seen_e and t[1] in seen_r]
    queries = np.asarray(ok[:4])
    return train, queries, data.n_entities, data.n_relations


def ratings(n=160, n_users=16, n_items=12, seed=0):
    """Synthetic low-rank ratings with noise: (user, item) pairs, ratings, queries."""
    rng = np.random.RandomState(seed)
    pairs = rng.permutation(n_users * n_items)[:n]
    X = np.column_stack([pairs // n_items, pairs % n_items]).astype(np.int64)
    U, V = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    y = 3.0 + (U[X[:, 0]] * V[X[:, 1]]).sum(axis=1) + 0.3 * rng.normal(size=n)
    return X, y, X[:6]


# ------------------------------------------------------------------ shared outputs
def sketch(A, k, axis=0):
    """``A`` contracted along ``axis`` with ``k`` fixed Gaussian vectors: ``(k, ...)``.

    Keeps large outputs small in the snapshot: a change of any entry of ``A``
    moves the sketch (with probability one), by about as much relative to its
    scale as the entry moved relative to ``A``'s.
    """
    A = np.moveaxis(np.asarray(A, dtype=np.float64), axis, 0)
    R = np.random.RandomState(12345).standard_normal((k, A.shape[0]))
    return (R @ A.reshape(A.shape[0], -1)).reshape((k,) + A.shape[1:])


def _explain_fields(bunch, prefix):
    """The four arrays of an ``explain`` result."""
    return {
        f"{prefix}/{f}": np.asarray(bunch[f])
        for f in ("helpful_indices", "helpful_values", "harmful_indices", "harmful_values")
    }


def _influence_outputs(inf, Xq, yq, k=5):
    """Everything a fitted InfluenceFunctions computes for queries ``Xq, yq``."""
    out = {
        "approximation": inf.approximation_,
        "transform": inf.transform(Xq, yq),
        "transform_no_y": inf.transform(Xq),
        "self_influence": inf.self_influence_,
        # all points' changes as a sketch over the parameters; three in full
        "parameter_changes_sketch": sketch(inf.parameter_changes(), 3),
        "parameter_changes_subset": inf.parameter_changes([3, 0, 7]),
        "loo_decision_function": inf.loo_decision_function(),
        "refined_indices": np.sort(np.asarray(inf.refined_indices_)),
        "solver_damping": inf.solver_info_["damping"],
    }
    out.update(_explain_fields(inf.explain(Xq, yq, k=k), "explain"))
    out.update(_explain_fields(inf.explain(Xq, k=k), "explain_no_y"))
    try:
        out["loo_predict_proba"] = inf.loo_predict_proba()
    except AttributeError:  # no probability link (e.g. LinearSVC, RidgeClassifier)
        pass
    return out


def _fit_influence(estimator, X, y, sample_weight=None, **params):
    from skinfluence import InfluenceFunctions

    return InfluenceFunctions(estimator, **params).fit(X, y, sample_weight=sample_weight)


def _cg_solver():
    """A solver passed as an instance (``solver=HessianSolver``), fresh for every fit."""
    from skinfluence.solvers import CGSolver

    return CGSolver(tol=1e-12)


def _logistic(**kw):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"tol": 1e-10, "max_iter": 10_000, **kw})


def _mlp_classifier(**kw):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**{"hidden_layer_sizes": (5,), "activation": "tanh", "alpha": 1.0,
                            "solver": "lbfgs", "tol": 1e-9, "max_iter": 3000,
                            "random_state": 0, **kw})


def _mlp_regressor(**kw):
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(**{"hidden_layer_sizes": (5,), "activation": "tanh", "alpha": 1.0,
                           "solver": "lbfgs", "tol": 1e-9, "max_iter": 3000,
                           "random_state": 0, **kw})


# ------------------------------------------------------------- influence functions
def _influence_case(name, make_estimator, data, sample_weight=None, group=True, **params):
    """Register ``influence/<name>``: fit on ``data()`` and return every output."""

    @case(f"influence/{name}")
    def run():
        X, y, Xq, yq = data()
        sw = None if sample_weight is None else sample_weight(len(y))
        kw = {k: v() if callable(v) else v for k, v in params.items()}
        inf = _fit_influence(make_estimator(), X, y, sw, **kw)
        out = _influence_outputs(inf, Xq, yq)
        if group:
            from skinfluence.valuation import predict_removal_effect, removal_parameter_change

            S = [1, 4, 9, 16]
            for order in (1, 2):
                out[f"group/order{order}/parameter_change"] = removal_parameter_change(
                    inf, S, order=order)
                out[f"group/order{order}/removal_effect"] = predict_removal_effect(
                    inf, S, Xq, yq, order=order)
        return out

    return run


def _weights(n):
    return 0.5 + (np.arange(n) % 4) / 2.0


# logistic regression, binary: every approximation and solver
for _approx in ("auto", "newton", "first_order"):
    _influence_case(f"logistic_binary/{_approx}", _logistic, breast_cancer,
                    approximation=_approx)
for _approx in ("newton", "first_order"):
    _influence_case(f"logistic_binary/{_approx}/cg", _logistic, breast_cancer,
                    approximation=_approx, solver="cg")
    _influence_case(f"logistic_binary/{_approx}/lissa", _logistic, breast_cancer,
                    approximation=_approx, solver="lissa", group=False)
    _influence_case(f"logistic_binary/{_approx}/exact_damped", _logistic, breast_cancer,
                    approximation=_approx, solver="exact", damping=0.5)
_influence_case("logistic_binary/newton/refine0", _logistic, breast_cancer, refine=0,
                group=False)
_influence_case("logistic_binary/newton/refine5", _logistic, breast_cancer, refine=5,
                group=False)
_influence_case("logistic_binary/first_order/refine5", _logistic, breast_cancer, refine=5,
                approximation="first_order", group=False)
_influence_case("logistic_binary/cg_maxiter3", _logistic, breast_cancer, solver="cg",
                max_iter=3, group=False)
_influence_case("logistic_binary/liblinear", lambda: _logistic(solver="liblinear"),
                breast_cancer)
_influence_case("logistic_binary/no_intercept", lambda: _logistic(fit_intercept=False),
                breast_cancer, group=False)

# logistic regression: multinomial, unpenalised, balanced, weighted
for _approx in ("newton", "first_order"):
    _influence_case(f"logistic_multinomial/{_approx}", _logistic, wine, approximation=_approx)
    _influence_case(f"logistic_unpenalised/{_approx}", lambda: _logistic(C=np.inf),
                    lambda: breast_cancer(n_features=3), approximation=_approx)
    _influence_case(f"logistic_balanced/{_approx}",
                    lambda: _logistic(class_weight="balanced"),
                    lambda: breast_cancer(seed=1), approximation=_approx)
    _influence_case(f"logistic_multinomial_balanced/{_approx}",
                    lambda: _logistic(class_weight="balanced"), wine, approximation=_approx,
                    group=False)
    _influence_case(f"logistic_sample_weight/{_approx}", _logistic, breast_cancer,
                    sample_weight=_weights, approximation=_approx)
_influence_case("logistic_multinomial/newton/cg", _logistic, wine, solver="cg", group=False)
_influence_case("logistic_multinomial/digits", lambda: _logistic(C=0.1), digits, group=False)


@case("influence/logistic_frozen/newton")
def _():
    from sklearn.frozen import FrozenEstimator

    X, y, Xq, yq = breast_cancer()
    model = _logistic().fit(X, y)
    inf = _fit_influence(FrozenEstimator(model), X, y)
    return _influence_outputs(inf, Xq, yq)


@case("influence/logistic_frozen_unconverged/newton")
def _():
    from sklearn.frozen import FrozenEstimator

    X, y, Xq, yq = breast_cancer()
    model = _logistic(tol=1e-2, max_iter=3).fit(X, y)
    inf = _fit_influence(FrozenEstimator(model), X, y)
    return _influence_outputs(inf, Xq, yq)


# least squares
def _ridge(**kw):
    from sklearn.linear_model import Ridge

    return Ridge(**{"alpha": 2.0, **kw})


def _linear_regression():
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


def _diabetes_two_targets():
    X, y, Xq, yq = diabetes()
    return X, np.column_stack([y, y**2]), Xq, np.column_stack([yq, yq**2])


for _approx in ("newton", "first_order"):
    _influence_case(f"ridge/{_approx}", _ridge, diabetes, approximation=_approx)
    _influence_case(f"ridge/{_approx}/cg", _ridge, diabetes, approximation=_approx,
                    solver="cg", group=False)
    _influence_case(f"linear_regression/{_approx}", _linear_regression, diabetes,
                    approximation=_approx)
    _influence_case(f"ridge_sample_weight/{_approx}", _ridge, diabetes, sample_weight=_weights,
                    approximation=_approx, group=False)
_influence_case("ridge/newton/lissa", _ridge, diabetes, solver="lissa", group=False)
_influence_case("ridge/newton/cg_instance", _ridge, diabetes, solver=_cg_solver, group=False)
_influence_case("ridge_two_targets/newton", lambda: _ridge(alpha=np.array([1.0, 3.0])),
                _diabetes_two_targets, group=False)
_influence_case("ridge_no_intercept/newton", lambda: _ridge(fit_intercept=False), diabetes,
                group=False)


def _ridge_classifier(**kw):
    from sklearn.linear_model import RidgeClassifier

    return RidgeClassifier(**{"alpha": 1.0, **kw})


for _approx in ("newton", "first_order"):
    _influence_case(f"ridge_classifier_binary/{_approx}", _ridge_classifier, breast_cancer,
                    approximation=_approx)
    _influence_case(f"ridge_classifier_multiclass/{_approx}", _ridge_classifier, wine,
                    approximation=_approx)
    _influence_case(f"ridge_classifier_balanced/{_approx}",
                    lambda: _ridge_classifier(class_weight="balanced"), wine,
                    approximation=_approx, group=False)


# SGD (fitted to tol: influence of the exact minimiser near the fitted parameters)
def _sgd_classifier(**kw):
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(**{"alpha": 0.01, "max_iter": 2000, "tol": 1e-8,
                            "random_state": 0, **kw})


def _sgd_regressor(**kw):
    from sklearn.linear_model import SGDRegressor

    return SGDRegressor(**{"alpha": 0.01, "max_iter": 2000, "tol": 1e-8,
                           "random_state": 0, **kw})


for _loss in ("log_loss", "modified_huber", "squared_hinge", "squared_error", "huber",
              "squared_epsilon_insensitive"):
    _influence_case(f"sgd_classifier_{_loss}/newton",
                    lambda _loss=_loss: _sgd_classifier(loss=_loss), breast_cancer,
                    group=_loss == "log_loss")
_influence_case("sgd_classifier_log_loss/first_order", lambda: _sgd_classifier(loss="log_loss"),
                breast_cancer, approximation="first_order")
_influence_case("sgd_classifier_multiclass/newton", lambda: _sgd_classifier(loss="log_loss"),
                wine)
_influence_case("sgd_classifier_multiclass_balanced/newton",
                lambda: _sgd_classifier(loss="log_loss", class_weight="balanced"), wine,
                group=False)
_influence_case("sgd_classifier_balanced/newton",
                lambda: _sgd_classifier(loss="log_loss", class_weight="balanced"),
                lambda: breast_cancer(seed=1), group=False)
_influence_case("sgd_classifier_no_penalty/newton",
                lambda: _sgd_classifier(loss="log_loss", penalty=None),
                lambda: breast_cancer(n_features=3), group=False)
_influence_case("sgd_classifier_sample_weight/newton", lambda: _sgd_classifier(loss="log_loss"),
                breast_cancer, sample_weight=_weights, group=False)
for _loss in ("squared_error", "huber", "squared_epsilon_insensitive"):
    _influence_case(f"sgd_regressor_{_loss}/newton",
                    lambda _loss=_loss: _sgd_regressor(loss=_loss, epsilon=0.5), diabetes,
                    group=_loss == "squared_error")
_influence_case("sgd_regressor_squared_error/first_order", _sgd_regressor, diabetes,
                approximation="first_order")


# linear SVM (squared hinge)
def _linear_svc(**kw):
    from sklearn.svm import LinearSVC

    return LinearSVC(**{"C": 0.5, "tol": 1e-10, "max_iter": 100_000, **kw})


for _approx in ("newton", "first_order"):
    _influence_case(f"linear_svc_binary/{_approx}", _linear_svc, breast_cancer,
                    approximation=_approx)
    _influence_case(f"linear_svc_multiclass/{_approx}", _linear_svc, wine,
                    approximation=_approx)
_influence_case("linear_svc_balanced/newton", lambda: _linear_svc(class_weight="balanced"),
                wine, group=False)
_influence_case("linear_svc_sample_weight/newton", _linear_svc, breast_cancer,
                sample_weight=_weights, group=False)


# generalised linear models
def _glm(name, **kw):
    import sklearn.linear_model as lm

    return getattr(lm, name)(**{"alpha": 0.1, "tol": 1e-12, "max_iter": 10_000, **kw})


for _approx in ("newton", "first_order"):
    _influence_case(f"poisson/{_approx}", lambda: _glm("PoissonRegressor"), diabetes,
                    approximation=_approx)
    _influence_case(f"gamma/{_approx}", lambda: _glm("GammaRegressor"), diabetes,
                    approximation=_approx)
    _influence_case(f"tweedie_1.5/{_approx}", lambda: _glm("TweedieRegressor", power=1.5),
                    diabetes, approximation=_approx)
_influence_case("tweedie_0_identity/newton",
                lambda: _glm("TweedieRegressor", power=0.0, link="identity"), diabetes)
_influence_case("tweedie_3_log/newton", lambda: _glm("TweedieRegressor", power=3.0),
                diabetes, group=False)
_influence_case("poisson_sample_weight/newton", lambda: _glm("PoissonRegressor"), diabetes,
                sample_weight=_weights, group=False)
_influence_case("poisson/newton/cg", lambda: _glm("PoissonRegressor"), diabetes,
                solver="cg", group=False)


# neural networks
_influence_case("mlp_classifier_binary/auto", _mlp_classifier, breast_cancer)
_influence_case("mlp_classifier_binary/first_order", _mlp_classifier, breast_cancer,
                approximation="first_order", group=False)
_influence_case("mlp_classifier_binary/newton/cg", _mlp_classifier, breast_cancer,
                approximation="newton", solver="cg", group=False)
_influence_case("mlp_classifier_binary/auto/cg", _mlp_classifier, breast_cancer,
                solver="cg", group=False)
_influence_case("mlp_classifier_binary/newton/refine2", _mlp_classifier, breast_cancer,
                refine=2, group=False)
_influence_case("mlp_classifier_binary/damped", _mlp_classifier, breast_cancer, damping=0.1,
                group=False)
_influence_case("mlp_classifier_multiclass/auto",
                lambda: _mlp_classifier(hidden_layer_sizes=(4,), activation="relu"), wine)
_influence_case("mlp_classifier_multiclass/first_order",
                lambda: _mlp_classifier(hidden_layer_sizes=(4,), activation="logistic"), wine,
                approximation="first_order", group=False)
_influence_case("mlp_classifier_two_layers/auto",
                lambda: _mlp_classifier(hidden_layer_sizes=(4, 3)), breast_cancer, group=False)
_influence_case("mlp_classifier_sample_weight/auto", _mlp_classifier, breast_cancer,
                sample_weight=_weights, group=False)
_influence_case("mlp_regressor/auto", _mlp_regressor, diabetes)
_influence_case("mlp_regressor/first_order", _mlp_regressor, diabetes,
                approximation="first_order", group=False)
_influence_case("mlp_regressor_identity/auto",
                lambda: _mlp_regressor(activation="identity", hidden_layer_sizes=(3,)),
                diabetes, group=False)


@case("influence/mlp_classifier_multilabel/auto")
def _():
    X, y, Xq, yq = wine()
    Y = np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    Yq = np.column_stack([yq == 0, yq == 2, Xq[:, 0] > 0]).astype(int)
    inf = _fit_influence(_mlp_classifier(hidden_layer_sizes=(4,)), X, Y)
    return _influence_outputs(inf, Xq, Yq)


# pipelines and sparse input
def _pipeline(final):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), final)


_raw_breast_cancer = lambda: breast_cancer(scale=False)  # noqa: E731
for _approx in ("newton", "first_order"):
    _influence_case(f"pipeline_logistic/{_approx}", lambda: _pipeline(_logistic()),
                    _raw_breast_cancer, approximation=_approx)
_influence_case("pipeline_logistic_sample_weight/newton", lambda: _pipeline(_logistic()),
                _raw_breast_cancer, sample_weight=_weights, group=False)
_influence_case("pipeline_mlp/auto", lambda: _pipeline(_mlp_classifier()), _raw_breast_cancer,
                group=False)


def _sparse_breast_cancer():
    X, y, Xq, yq = breast_cancer(n_features=10)
    X, Xq = np.where(np.abs(X) > 0.7, X, 0.0), np.where(np.abs(Xq) > 0.7, Xq, 0.0)
    return sp.csr_matrix(X), y, sp.csr_matrix(Xq), yq


def _sparse_diabetes():
    X, y, Xq, yq = diabetes(n_features=8)
    X, Xq = np.where(np.abs(X) > 0.7, X, 0.0), np.where(np.abs(Xq) > 0.7, Xq, 0.0)
    return sp.csr_matrix(X), y, sp.csr_matrix(Xq), yq


for _solver in ("exact", "cg"):
    for _approx in ("newton", "first_order"):
        _influence_case(f"sparse_logistic/{_approx}/{_solver}", _logistic,
                        _sparse_breast_cancer, approximation=_approx, solver=_solver)
    _influence_case(f"sparse_ridge/newton/{_solver}", _ridge, _sparse_diabetes, solver=_solver,
                    group=False)
_influence_case("sparse_poisson/newton", lambda: _glm("PoissonRegressor"), _sparse_diabetes,
                group=False)
_influence_case("sparse_mlp/auto", _mlp_classifier, _sparse_breast_cancer, group=False)


_influence_case("mlp_regressor_small_alpha/auto", lambda: _mlp_regressor(alpha=0.1), diabetes,
                group=False)


# ----------------------------------------------------------------- objective layer
def _objective_case(name, make_estimator, data, sample_weight=None):
    """Register ``objective/<name>``: the reconstructed training objective of a fit."""

    @case(f"objective/{name}")
    def run():
        from skinfluence.objectives import make_objective, stationarity

        X, y, Xq, yq = data()
        sw = None if sample_weight is None else sample_weight(len(y))
        est = make_estimator()
        est.fit(X, y, **({} if sw is None else _fit_weight_param(est, sw)))
        obj = make_objective(est, X, y, sw)
        V = np.random.RandomState(1).standard_normal((obj.n_params, 2))
        Xf, yq_enc = obj.features(Xq), obj.encode_target(yq)
        return {
            "theta": obj.theta,
            "weights": obj.weights,
            "objective_value": obj.objective_value(),
            "objective_gradient": obj.objective_gradient(),
            "stationarity": stationarity(obj),
            "hessian": obj.hessian(),
            "hessian_diagonal": obj.hessian_diagonal(),
            "hvp": obj.hvp(V),
            "outputs": obj.outputs(Xf),
            "sample_losses": obj.sample_losses(Xf, yq_enc),
            "sample_gradients": obj.sample_gradients(Xf, yq_enc),
            "loss_derivatives/r": obj.loss_derivatives(obj.outputs(Xf), yq_enc)[0],
            "loss_derivatives/S": obj.loss_derivatives(obj.outputs(Xf), yq_enc)[1],
            "jvp": obj.jvp(Xf, V),
        }

    return run


def _fit_weight_param(est, sw):
    from sklearn.pipeline import Pipeline

    if isinstance(est, Pipeline):
        return {f"{est.steps[-1][0]}__sample_weight": sw}
    return {"sample_weight": sw}


_objective_case("logistic_binary", _logistic, breast_cancer)
_objective_case("logistic_liblinear", lambda: _logistic(solver="liblinear"), breast_cancer)
_objective_case("logistic_multinomial", _logistic, wine)
_objective_case("logistic_unpenalised", lambda: _logistic(C=np.inf),
                lambda: breast_cancer(n_features=3))
_objective_case("logistic_balanced_weighted", lambda: _logistic(class_weight="balanced"), wine,
                sample_weight=_weights)
_objective_case("ridge_two_targets", lambda: _ridge(alpha=np.array([1.0, 3.0])),
                _diabetes_two_targets)
_objective_case("linear_regression", _linear_regression, diabetes)
_objective_case("ridge_classifier_balanced", lambda: _ridge_classifier(class_weight="balanced"),
                wine)
for _loss in ("log_loss", "modified_huber", "squared_hinge"):
    _objective_case(f"sgd_classifier_{_loss}", lambda _l=_loss: _sgd_classifier(loss=_l),
                    breast_cancer)
_objective_case("sgd_classifier_multiclass_balanced",
                lambda: _sgd_classifier(loss="log_loss", class_weight="balanced"), wine)
for _loss in ("huber", "squared_epsilon_insensitive"):
    _objective_case(f"sgd_regressor_{_loss}", lambda _l=_loss: _sgd_regressor(loss=_l,
                                                                              epsilon=0.5),
                    diabetes)
_objective_case("linear_svc_multiclass_balanced", lambda: _linear_svc(class_weight="balanced"),
                wine)
_objective_case("poisson", lambda: _glm("PoissonRegressor"), diabetes)
_objective_case("gamma", lambda: _glm("GammaRegressor"), diabetes)
_objective_case("tweedie_1.5", lambda: _glm("TweedieRegressor", power=1.5), diabetes)
_objective_case("tweedie_0_identity", lambda: _glm("TweedieRegressor", power=0.0,
                                                   link="identity"), diabetes)
_objective_case("mlp_classifier_binary", _mlp_classifier, breast_cancer, sample_weight=_weights)
_objective_case("mlp_classifier_multiclass",
                lambda: _mlp_classifier(hidden_layer_sizes=(4,), activation="relu"), wine)
_objective_case("mlp_regressor", lambda: _mlp_regressor(hidden_layer_sizes=(4, 3)), diabetes)
_objective_case("pipeline_logistic", lambda: _pipeline(_logistic()), _raw_breast_cancer)
_objective_case("sparse_logistic", _logistic, _sparse_breast_cancer)


# --------------------------------------------------------------------------- TracIn
def _tracin_case(name, make_estimator, data, target=None, sample_weight=None, **params):
    @case(f"tracin/{name}")
    def run():
        from skinfluence import TracIn

        X, y, Xq, yq = data()
        if target is not None:
            y, yq = target(X, y), target(Xq, yq)
        sw = None if sample_weight is None else sample_weight(len(y))
        tr = TracIn(make_estimator(), random_state=0, **params).fit(X, y, sample_weight=sw)
        out = {
            "transform": tr.transform(Xq, yq),
            "transform_no_y": tr.transform(Xq),
            "self_influence": tr.self_influence_,
            "learning_rates": tr.learning_rates_,
            "checkpoint_epochs": tr.checkpoint_epochs_,
            "predict": tr.predict(Xq),
        }
        out.update(_explain_fields(tr.explain(Xq, yq, k=5), "explain"))
        out.update(_explain_fields(tr.explain(Xq, k=5), "explain_no_y"))
        return out

    return run


for _schedule in ("optimal", "invscaling", "constant", "adaptive"):
    _tracin_case(f"sgd_classifier_{_schedule}",
                 lambda _s=_schedule: _sgd_classifier(loss="log_loss", learning_rate=_s,
                                                      eta0=0.05),
                 breast_cancer, n_epochs=4)
_tracin_case("sgd_classifier_multiclass", lambda: _sgd_classifier(loss="log_loss"), wine,
             n_epochs=5, checkpoints=2, batch_size=16)
_tracin_case("sgd_classifier_modified_huber", lambda: _sgd_classifier(loss="modified_huber"),
             breast_cancer, n_epochs=3, checkpoints=[1, 3])
_tracin_case("sgd_regressor", lambda: _sgd_regressor(learning_rate="invscaling", eta0=0.02),
             diabetes, n_epochs=4, batch_size=20, sample_weight=_weights)
_tracin_case("sgd_regressor_huber", lambda: _sgd_regressor(loss="huber", epsilon=0.5,
                                                           learning_rate="constant", eta0=0.01),
             diabetes, n_epochs=3)
_tracin_case("mlp_classifier_sgd",
             lambda: _mlp_classifier(solver="sgd", learning_rate_init=0.05, batch_size=20),
             breast_cancer, n_epochs=4, checkpoints=[1, 3, 4])
_tracin_case("mlp_classifier_sgd_invscaling",
             lambda: _mlp_classifier(solver="sgd", learning_rate="invscaling",
                                     learning_rate_init=0.2, power_t=0.5), wine, n_epochs=3,
             sample_weight=_weights)
_tracin_case("mlp_classifier_adam", lambda: _mlp_classifier(solver="adam",
                                                            learning_rate_init=0.01), wine,
             n_epochs=3, batch_size=30)
_tracin_case("mlp_regressor_adam", lambda: _mlp_regressor(solver="adam", learning_rate_init=0.01,
                                                          batch_size=25), diabetes, n_epochs=3)
_tracin_case("mlp_regressor_two_targets_sgd",
             lambda: _mlp_regressor(solver="sgd", learning_rate_init=0.01), diabetes,
             target=lambda X, y: np.column_stack([y, X[:, 0]]), n_epochs=2)


# ----------------------------------------------------------------- Gradient Rollback
def _explanations(gr, queries, prefix):
    """transform (values and sparsity structure) and explain of a fitted GradientRollback."""
    T = gr.transform(queries)
    structure = T.copy()
    structure.data[:] = 1.0
    idx, delta = gr.explain(queries, k=5)
    return {
        f"{prefix}/transform": T,
        f"{prefix}/transform_structure": structure.toarray() != 0,
        f"{prefix}/explain/indices": idx,
        f"{prefix}/explain/deltas": delta,
    }


def _training_record(gr):
    """What fit recorded: per-example updates, residuals, the model's loss curve."""
    out = {"loss_curve": gr.estimator_.loss_curve_}
    for name, g in sorted(gr.gamma_.items()):
        if g.ndim == 3:  # the negatives' rows (n_train, n_entities, dim): sketched over dim
            out[f"gamma/{name}_sketch"] = sketch(g, 2, axis=2)
        else:
            out[f"gamma/{name}"] = g
    for name, r in sorted(gr.residual_.items()):
        out[f"residual/{name}"] = r
    return out


def _zero_some(n):
    w = np.ones(n)
    w[::7] = 0.0
    w[1::5] = 2.0
    return w


def _kg_case(name, model, modes=("auto", "first_order", "full", "trajectory"),
             sample_weight=None, options=(), **params):
    """Register ``rollback/<name>``: one fit explained by each mode in ``modes``.

    ``"trajectory"`` needs checkpoints taken during ``fit``: it gets its own fit.
    """

    @case(f"rollback/{name}")
    def run():
        import skinfluence

        train, queries, n_ent, n_rel = nations()
        sw = None if sample_weight is None else sample_weight(len(train))

        def fit(mode):
            est = getattr(skinfluence, model)(n_entities=n_ent, n_relations=n_rel,
                                              random_state=0, n_components=4, max_iter=5,
                                              batch_size=16, **params)
            gr = skinfluence.GradientRollback(est, rollback=mode, **dict(options))
            return gr.fit(train, sample_weight=sw)

        gr = fit("auto")
        out = _training_record(gr)
        out.update({
            "entity_embeddings": gr.estimator_.entity_embeddings_,
            "relation_embeddings": gr.estimator_.relation_embeddings_,
            "predict": gr.predict(queries[:, :2]),
            "predict_proba": gr.predict_proba(queries[:, :2]),
        })
        for mode in modes:
            if mode == "trajectory":
                gr_mode = fit("trajectory")
            else:
                gr_mode = gr.set_params(rollback=mode)
            out.update(_explanations(gr_mode, queries, mode))
            # (h, r) queries explain the model's top-1 tail
            idx, delta = gr_mode.explain(queries[:2, :2], k=5)
            out[f"{mode}/explain_top1/indices"] = idx
            out[f"{mode}/explain_top1/deltas"] = delta
        return out

    return run


_kg_case("distmult_adam", "DistMult")
_kg_case("complex_adam", "ComplEx")
_kg_case("distmult_sgd_full_softmax", "DistMult", optimizer="sgd", learning_rate=0.1,
         learning_rate_decay=0.9, n_negatives=None, alpha=0.01)
_kg_case("complex_sgd", "ComplEx", optimizer="sgd", learning_rate=0.1)
_kg_case("distmult_adam_weighted", "DistMult", sample_weight=_zero_some)
_kg_case("distmult_adam_scope_all", "DistMult", modes=("first_order", "full"),
         options={"scope": "all"})
_kg_case("distmult_adam_record_negatives", "DistMult", modes=("first_order", "full"),
         options={"record_negatives": True})
_kg_case("distmult_sgd_record_negatives", "DistMult", modes=("first_order", "full"),
         options={"record_negatives": True}, optimizer="sgd", learning_rate=0.1)
_kg_case("complex_sgd_record_negatives", "ComplEx", modes=("first_order", "full"),
         options={"record_negatives": True}, optimizer="sgd", learning_rate=0.1)
_kg_case("distmult_adam_max_norm", "DistMult", modes=("first_order", "full"), max_norm=1.0)


def _mf_case(name, modes=("auto", "first_order", "full"), sample_weight=None, **params):
    """Register ``rollback/<name>``: a matrix factorisation explained by each mode."""

    @case(f"rollback/{name}")
    def run():
        from skinfluence import GradientRollback, MatrixFactorization

        X, y, queries = ratings()
        sw = None if sample_weight is None else sample_weight(len(y))
        est = MatrixFactorization(random_state=0, n_components=3, max_iter=4, batch_size=8,
                                  **params)
        gr = GradientRollback(est).fit(X, y, sample_weight=sw)
        out = _training_record(gr)
        out["predict"] = gr.predict(queries)
        for mode in modes:
            out.update(_explanations(gr.set_params(rollback=mode), queries, mode))
        return out

    return run


_mf_case("mf_adam")
_mf_case("mf_sgd_decay", optimizer="sgd", learning_rate=0.05, learning_rate_decay=0.8)
_mf_case("mf_adam_weighted", sample_weight=_zero_some)
_mf_case("mf_sgd_no_intercept", optimizer="sgd", learning_rate=0.05, fit_intercept=False,
         alpha=0.1)


# ------------------------------------------------------------------------ valuation
def _valuation_data():
    return breast_cancer(n_train=30, n_query=30, n_features=4, seed=2)


def _valuation_outputs(v, X_eval, y_eval, transform=True):
    """``values_``, every deterministic fitted attribute (no timings), ``transform``."""
    out = {"values": v.values_}
    for attr in ("stderr_", "utility_full_", "utility_empty_", "n_iter_", "n_fits_",
                 "converged_", "n_oob_", "n_validation_", "fast_utility_", "group_labels_"):
        if hasattr(v, attr):
            out[attr.rstrip("_")] = getattr(v, attr)
    if transform:
        out["transform"] = v.transform(X_eval, y_eval)
    out["predict"] = v.predict(X_eval)
    return out


def _groups(n):
    return np.arange(n) // 3


def _valuation_case(name, make, *, transform=True, groups=False, data=_valuation_data,
                    validation=True, sample_weight=None):
    @case(f"valuation/{name}")
    def run():
        X, y, Xv, yv = data()
        kw = {}
        if validation:
            kw.update(X_val=Xv, y_val=yv)
        if groups:
            kw["groups"] = _groups(len(y))
        if sample_weight is not None:
            kw["sample_weight"] = sample_weight(len(y))
        v = make().fit(X, y, **kw)
        return _valuation_outputs(v, Xv[:8], yv[:8], transform)

    return run


def _val(cls_name, *args, **kw):
    import skinfluence

    return getattr(skinfluence, cls_name)(*args, **kw)


def _ridge_valuation_data():
    return diabetes(n_train=30, n_query=30, n_features=4, seed=2)


_valuation_case("loo/logistic", lambda: _val("LOOValuation", _logistic()))
_valuation_case("loo/logistic_cold", lambda: _val("LOOValuation", _logistic(),
                                                  warm_start=False))
_valuation_case("loo/logistic_log_loss", lambda: _val("LOOValuation", _logistic(),
                                                      scoring="neg_log_loss"))
_valuation_case("loo/logistic_groups", lambda: _val("LOOValuation", _logistic()),
                transform=False, groups=True)
_valuation_case("loo/logistic_sample_weight", lambda: _val("LOOValuation", _logistic()),
                transform=False, sample_weight=_weights)
_valuation_case("loo/ridge", lambda: _val("LOOValuation", _ridge()),
                data=_ridge_valuation_data)
for _approx in ("newton", "first_order"):
    _valuation_case(f"influence/logistic_{_approx}",
                    lambda _a=_approx: _val("InfluenceValuation", _logistic(),
                                            approximation=_a))
    for _order in (1, 2):
        _valuation_case(f"influence/logistic_{_approx}_groups_order{_order}",
                        lambda _a=_approx, _o=_order: _val("InfluenceValuation", _logistic(),
                                                           approximation=_a, group_order=_o),
                        transform=False, groups=True)
_valuation_case("influence/ridge", lambda: _val("InfluenceValuation", _ridge()),
                data=_ridge_valuation_data)
_valuation_case("influence/logistic_damped",
                lambda: _val("InfluenceValuation", _logistic(), damping=0.3, solver="cg"))
_valuation_case("knn_shapley/k5", lambda: _val("KNNShapley", n_neighbors=5))
_valuation_case("knn_shapley/k1", lambda: _val("KNNShapley", n_neighbors=1))
_valuation_case("knn_shapley/k3_leave_self_out", lambda: _val("KNNShapley", n_neighbors=3),
                transform=False, validation=False)
_valuation_case("knn_shapley/multiclass", lambda: _val("KNNShapley", n_neighbors=4),
                data=lambda: wine(n_train=30, n_query=20, seed=3))

_SEMI = {"tol": None, "random_state": 0}
for _scoring in (None, "neg_log_loss", "neg_brier_score"):
    _tag = _scoring or "accuracy"
    _valuation_case(f"tmc_shapley/fast_{_tag}",
                    lambda _s=_scoring: _val("TMCShapley", _logistic(), scoring=_s,
                                             max_iter=40, **_SEMI), transform=False)
_valuation_case("tmc_shapley/fast_no_truncation",
                lambda: _val("TMCShapley", _logistic(), max_iter=30, truncation_tol=0.0,
                             batch_size=7, **_SEMI), transform=False)
_valuation_case("tmc_shapley/fast_tol",
                lambda: _val("TMCShapley", _logistic(), max_iter=400, tol=0.5,
                             random_state=1), transform=False)
_valuation_case("tmc_shapley/fit", lambda: _val("TMCShapley", _logistic(), max_iter=4,
                                                fast_utility=False, **_SEMI),
                transform=False)
_valuation_case("tmc_shapley/fit_groups",
                lambda: _val("TMCShapley", _logistic(), max_iter=6, batch_size=2,
                             fast_utility=False, **_SEMI), transform=False, groups=True)
_valuation_case("tmc_shapley/ridge",
                lambda: _val("TMCShapley", _ridge(), max_iter=4, **_SEMI),
                transform=False, data=_ridge_valuation_data)
_valuation_case("beta_shapley/fast", lambda: _val("BetaShapley", _logistic(), alpha=4.0,
                                                  beta=1.0, max_iter=40, **_SEMI),
                transform=False)
_valuation_case("beta_shapley/fit", lambda: _val("BetaShapley", _logistic(), max_iter=4,
                                                 fast_utility=False, **_SEMI),
                transform=False)
_valuation_case("banzhaf/fast", lambda: _val("BanzhafValuation", _logistic(), max_iter=300,
                                             **_SEMI), transform=False)
_valuation_case("banzhaf/fast_log_loss",
                lambda: _val("BanzhafValuation", _logistic(), scoring="neg_log_loss",
                             max_iter=300, batch_size=64, **_SEMI), transform=False)
_valuation_case("banzhaf/fit", lambda: _val("BanzhafValuation", _logistic(), max_iter=24,
                                            fast_utility=False, **_SEMI), transform=False)
_valuation_case("banzhaf/fit_empty_score",
                lambda: _val("BanzhafValuation", _logistic(), max_iter=16, empty_score=0.5,
                             fast_utility=False, **_SEMI), transform=False, groups=True)
_valuation_case("data_oob/fast", lambda: _val("DataOOB", _logistic(), n_estimators=40,
                                              random_state=0),
                transform=False, validation=False)
_valuation_case("data_oob/fast_weighted",
                lambda: _val("DataOOB", _logistic(), n_estimators=40, max_samples=0.7,
                             random_state=0),
                transform=False, validation=False, sample_weight=_weights)
_valuation_case("data_oob/fit", lambda: _val("DataOOB", _logistic(), n_estimators=10,
                                             fast_utility=False, random_state=0),
                transform=False, validation=False)
_valuation_case("data_oob/multiclass", lambda: _val("DataOOB", _logistic(), n_estimators=10,
                                                    random_state=0),
                transform=False, validation=False,
                data=lambda: wine(n_train=30, n_query=5, seed=3))
_valuation_case("data_oob/ridge", lambda: _val("DataOOB", _ridge(), n_estimators=15,
                                               random_state=0),
                transform=False, validation=False, data=_ridge_valuation_data)


# ------------------------------------------------------------------------- cleaning
def _noisy_breast_cancer():
    X, y, Xq, yq = breast_cancer(n_train=100, n_query=40, seed=4)
    y_noisy, _ = noisy(y, 0.15)
    return X, y_noisy, Xq, yq


def _noisy_wine():
    X, y, Xq, yq = wine(n_train=100, n_query=20, seed=4)
    y_noisy, _ = noisy(y, 0.15)
    return X, y_noisy, Xq, yq


def _cleaner_outputs(cleaner, X, y, **fit_params):
    out = {
        "scores": cleaner.scores_,
        "issues": cleaner.issues_,
        "n_issues": cleaner.n_issues_,
        "suggested_labels": cleaner.suggested_labels_,
        "proba": cleaner.proba_,
        "noise_joint": cleaner.noise_joint_,
        "mask": cleaner.get_mask(),
    }
    Xr, yr = cleaner.fit_resample(X, y, **fit_params)
    out["fit_resample/X_rows"], out["fit_resample/y"] = _row_ids(Xr, X), yr
    return out


def _row_ids(Xr, X):
    """Which row of ``X`` each row of ``Xr`` is (fit_resample returns rows of its input)."""
    X, Xr = np.asarray(X), np.asarray(Xr)
    ids = []
    for row in Xr:
        hits = np.flatnonzero((X == row).all(axis=1))
        if hits.size == 0:
            raise AssertionError("fit_resample returned a row that is not in X")
        ids.append(hits[0])
    return np.asarray(ids)


def _cleaner_case(name, make_estimator=None, data=_noisy_breast_cancer, sample_weight=None,
                  labels=None, **params):
    @case(f"cleaning/{name}")
    def run():
        from skinfluence import InfluenceCleaner

        X, y, Xq, yq = data()
        if labels is not None:
            y, yq = labels[y], labels[yq]
        val = {}
        if params.get("method") == "validation":  # the held-out rows are the trusted set
            val = {"X_val": Xq, "y_val": yq}
        est = None if make_estimator is None else make_estimator()
        cleaner = InfluenceCleaner(est, **params)
        sw = None if sample_weight is None else sample_weight(len(y))
        cleaner.fit(X, y, sample_weight=sw, **val)
        out = _cleaner_outputs(cleaner, X, y, **val)
        if sw is not None:
            Xr, yr = cleaner.fit_resample(X, y, sample_weight=sw, **val)
            out["fit_resample_weighted/X_rows"] = _row_ids(Xr, X)
            out["fit_resample_weighted/y"] = yr
        return out

    return run


for _method in ("loo", "self_influence", "validation", "loss", "cross_val"):
    _cleaner_case(f"logistic/{_method}", _logistic, method=_method, cv=3)
    _cleaner_case(f"logistic/{_method}_relabel", _logistic, method=_method, cv=3,
                  action="relabel")
    _cleaner_case(f"logistic/{_method}_threshold", _logistic, method=_method, cv=3,
                  threshold=0.1)
for _filter in ("prune_by_noise_rate", "prune_by_class", "both", "confident_joint",
                "predicted_neq_given"):
    _cleaner_case(f"logistic/loo_{_filter}", _logistic, filter_by=_filter)
_cleaner_case("default_estimator/loo")
_cleaner_case("logistic/loo_damped", _logistic, damping=0.5)
_cleaner_case("logistic/loo_sample_weight", _logistic, sample_weight=_weights)
_cleaner_case("logistic/self_influence_sample_weight", _logistic, method="self_influence",
              sample_weight=_weights)
_cleaner_case("logistic_multiclass/loo", _logistic, data=_noisy_wine)
_cleaner_case("logistic_multiclass/loo_string_labels", _logistic, data=_noisy_wine,
              labels=np.array(["barolo", "grignolino", "barbera"]))
_cleaner_case("logistic_multiclass/self_influence", _logistic, data=_noisy_wine,
              method="self_influence")
_cleaner_case("logistic_multiclass/validation", _logistic, data=_noisy_wine,
              method="validation", action="relabel")
_cleaner_case("linear_svc/loo", _linear_svc)
_cleaner_case("linear_svc_multiclass/loo", _linear_svc, data=_noisy_wine)
_cleaner_case("linear_svc/self_influence", _linear_svc, method="self_influence")
_cleaner_case("ridge_classifier/loo", _ridge_classifier, data=_noisy_wine)
_cleaner_case("sgd_classifier/loo", lambda: _sgd_classifier(loss="log_loss"))
_cleaner_case("mlp/loo", _mlp_classifier)
_cleaner_case("mlp/self_influence", _mlp_classifier, method="self_influence")
_cleaner_case("pipeline/loo", lambda: _pipeline(_logistic()),
              data=lambda: (lambda X, y, Xq, yq: (X * 7.0 + 3.0, y, Xq * 7.0 + 3.0, yq))(
                  *_noisy_breast_cancer()))


@case("cleaning/frozen/loo")
def _():
    from sklearn.frozen import FrozenEstimator
    from skinfluence import InfluenceCleaner

    X, y, _, _ = _noisy_breast_cancer()
    cleaner = InfluenceCleaner(FrozenEstimator(_logistic().fit(X, y))).fit(X, y)
    return _cleaner_outputs(cleaner, X, y)


def _clean_classifier_case(name, data=_noisy_breast_cancer, cleaner=None, **params):
    @case(f"cleaning/clean_classifier/{name}")
    def run():
        from skinfluence import CleanClassifier, InfluenceCleaner

        X, y, Xq, _ = data()
        cl = None if cleaner is None else InfluenceCleaner(_logistic(), **cleaner)
        clf = CleanClassifier(_logistic(), cleaner=cl, **params).fit(X, y)
        return {
            "cleaned_mask": clf.cleaned_mask_,
            "cleaner_scores": clf.cleaner_.scores_,
            "coef": clf.estimator_.coef_,
            "intercept": clf.estimator_.intercept_,
            "predict_proba": clf.predict_proba(Xq),
            "decision_function": clf.decision_function(Xq),
            "predict": clf.predict(Xq),
        }

    return run


_clean_classifier_case("default")
_clean_classifier_case("fraction_0.1", fraction=0.1)
_clean_classifier_case("fraction_0", fraction=0.0)
_clean_classifier_case("relabel", cleaner={"action": "relabel"})
_clean_classifier_case("self_influence_fraction", cleaner={"method": "self_influence"},
                       fraction=0.05)
_clean_classifier_case("multiclass", data=_noisy_wine)


@case("cleaning/confident_learning")
def _():
    from skinfluence.cleaning import (
        cleaning_curve,
        confident_joint,
        estimate_joint,
        find_label_issues,
        issue_scores,
    )
    from skinfluence.cleaning._confident import FILTERS

    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, size=60)
    logits = rng.normal(size=(60, 3)) + 2.0 * np.eye(3)[labels]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    C = confident_joint(labels, P)
    out = {
        "confident_joint": C[0] if isinstance(C, tuple) else C,
        "estimate_joint": estimate_joint(C[0] if isinstance(C, tuple) else C,
                                         np.bincount(labels, minlength=3)),
        "issue_scores/self_confidence": issue_scores(labels, P, "self_confidence"),
        "issue_scores/normalized_margin": issue_scores(labels, P, "normalized_margin"),
    }
    for f in FILTERS:
        out[f"find_label_issues/{f}"] = find_label_issues(labels, P, filter_by=f)
        out[f"find_label_issues/{f}/frac_noise_0.5"] = find_label_issues(
            labels, P, filter_by=f, frac_noise=0.5)
    is_noisy = rng.rand(60) < 0.2
    for key, value in _as_items(cleaning_curve(is_noisy, issue_scores(labels, P))):
        out[f"cleaning_curve/{key}"] = value
    for key, value in _as_items(cleaning_curve(is_noisy, issue_scores(labels, P),
                                               n_points=7)):
        out[f"cleaning_curve_7/{key}"] = value
    return out


def _as_items(result):
    """A tuple or a dict-like result as ``(name, array)`` pairs."""
    if isinstance(result, tuple):
        return [(str(i), v) for i, v in enumerate(result)]
    if hasattr(result, "items"):
        return sorted(result.items())
    return [("0", result)]


# ------------------------------------------------------------------------------ CLI
def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _fmt(v):
    return repr(round(float(v), 6))


def _classification_csv(directory, name="bc.csv", multiclass=False, n=60, seed=5):
    """Customer-style table: identifier, numbers (one missing cell), a category, a label."""
    if multiclass:
        X, y, _, _ = wine(n_train=n, n_query=20, n_features=4, seed=seed, scale=False)
        names = np.array(["barolo", "grignolino", "barbera"])
    else:
        X, y, _, _ = breast_cancer(n_train=n, n_query=20, n_features=4, seed=seed,
                                   scale=False)
        names = np.array(["benign", "malignant"])
    y_noisy, _ = noisy(y, 0.1, seed=seed)
    region = np.array(["north", "south", "east"])[np.argsort(np.argsort(X[:, 0])) % 3]
    header = ["code", "f0", "f1", "f2", "f3", "region", "label"]
    rows = []
    for i in range(n):
        cells = [_fmt(v) for v in X[i]]
        if i == 4:
            cells[1] = ""  # a missing number: imputed
        rows.append([f"c{i:03d}"] + cells + [region[i], names[y_noisy[i]]])
    return _write(os.path.join(directory, name), header, rows)


def _regression_csv(directory, name="diabetes.csv", n=50, seed=5):
    X, y, _, _ = diabetes(n_train=n, n_query=20, n_features=4, seed=seed)
    header = ["patient", "age", "sex", "bmi", "bp", "progression"]
    rows = [[f"p{i:03d}"] + [_fmt(v) for v in X[i]] + [_fmt(y[i])] for i in range(n)]
    return _write(os.path.join(directory, name), header, rows)


def _read_output(path):
    """Output CSV columns: numbers as float arrays, everything else as str arrays."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    out = {}
    for j, name in enumerate(header):
        cells = [r[j] for r in body]
        try:
            out[f"column/{name}"] = np.array([float(c) for c in cells])
        except ValueError:
            out[f"column/{name}"] = np.array(cells, dtype=str)
    return out


def _cli_case(name, command, *args, data="classification", validation=False):
    @case(f"cli/{name}")
    def run():
        from skinfluence.cli import main

        with tempfile.TemporaryDirectory() as tmp:
            if data == "regression":
                path = _regression_csv(tmp)
            else:
                path = _classification_csv(tmp, multiclass=data == "multiclass")
            argv = [command, path, *args, "--output", os.path.join(tmp, "out.csv"), "--quiet"]
            if validation:
                val = _classification_csv(tmp, "val.csv", multiclass=data == "multiclass",
                                          n=30, seed=6)
                argv += ["--validation", val]
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()) as err:
                code = main(argv)
            if code != 0:
                raise RuntimeError(f"skinfluence {' '.join(argv)} exited with {code}: "
                                   f"{err.getvalue()}")
            out = _read_output(os.path.join(tmp, "out.csv"))
        out["exit_code"] = code
        return out

    return run


for _method in ("loo", "self_influence", "loss", "cross_val"):
    _cli_case(f"label_issues/{_method}", "label-issues", "--target", "label",
              "--method", _method)
_cli_case("label_issues/multiclass", "label-issues", "--target", "label", data="multiclass")
_cli_case("label_issues/linear_svm", "label-issues", "--target", "label",
          "--model", "linear-svm")
_cli_case("label_issues/mlp", "label-issues", "--target", "label", "--model", "mlp")
_cli_case("label_issues/categorical_as_ignored", "label-issues", "--target", "label",
          "--ignore", "region", "--id-columns", "code")
_cli_case("explain/logistic", "explain", "--target", "label", "--row", "3", "-k", "4")
_cli_case("explain/logistic_against_label", "explain", "--target", "label", "--row", "7",
          "--against", "label")
_cli_case("explain/multiclass", "explain", "--target", "label", "--row", "59",
          data="multiclass")
_cli_case("explain/linear_svm", "explain", "--target", "label", "--row", "2",
          "--model", "linear-svm")
_cli_case("explain/mlp", "explain", "--target", "label", "--row", "5", "--model", "mlp")
# --alpha 1: the penalty these were recorded with (ridge's default alpha is now chosen by
# exact leave-one-out, issue 16)
_cli_case("explain/ridge", "explain", "--target", "progression", "--row", "0",
          "--model", "ridge", "--alpha", "1", data="regression")
_cli_case("explain/ridge_against_label", "explain", "--target", "progression", "--row", "1",
          "--model", "ridge", "--alpha", "1", "--against", "label", data="regression")
_cli_case("explain/mlp_regression", "explain", "--target", "progression", "--row", "2",
          "--model", "mlp", "--regression", data="regression")
_cli_case("value/knn_shapley", "value", "--target", "label")
_cli_case("value/knn_shapley_validation", "value", "--target", "label", "--n-neighbors", "3",
          validation=True)
_cli_case("value/data_oob", "value", "--target", "label", "--method", "data-oob")
_cli_case("value/loo", "value", "--target", "label", "--method", "loo", validation=True)
_cli_case("value/tmc_shapley", "value", "--target", "label", "--method", "tmc-shapley",
          validation=True)
_cli_case("value/data_oob_regression", "value", "--target", "progression", "--method",
          "data-oob", "--model", "ridge", "--alpha", "1", data="regression")
_cli_case("value/data_oob_seed", "value", "--target", "label", "--method", "data-oob",
          "--random-state", "3")
