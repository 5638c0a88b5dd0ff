"""Sample weights with a Pipeline: every meta-estimator, metadata routing off and on.

Routing off, the weights go to the Pipeline's final step; routing on, to the steps that
requested them with ``set_fit_request``.  Either way a
``Pipeline(StandardScaler, LogisticRegression)`` with ``sample_weight`` must give exactly
what the same pipeline gives with the weights handed to its final step by hand.
"""

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import CleanClassifier, InfluenceCleaner, InfluenceFunctions
from skinfluence.valuation import (
    BanzhafValuation,
    BetaShapley,
    DataOOB,
    InfluenceValuation,
    LOOValuation,
    TMCShapley,
)

ROUTING = pytest.mark.parametrize("routing", [False, True], ids=["routing_off", "routing_on"])
# same data, same operations: only floating-point noise could separate the two fits
EXACT = dict(rtol=1e-12, atol=1e-14)


pytestmark = pytest.mark.usefixtures("single_blas_thread")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=70, n_features=4, flip_y=0.1, random_state=3)
    w = np.random.default_rng(0).uniform(0.2, 3.0, 40)
    return X[:40], y[:40], X[40:], y[40:], w


def _lr():
    return LogisticRegression(C=0.5, tol=1e-10, max_iter=10000)


def _pipe(routing):
    """The pipeline under test; with routing on only its final step requests the weights."""
    scaler, lr = StandardScaler(), _lr()
    if routing:
        scaler.set_fit_request(sample_weight=False)
        lr.set_fit_request(sample_weight=True)
    return make_pipeline(scaler, lr)


def _hand_fit(X, y, w):
    """The pipeline fitted with the weights given to its final step by hand."""
    params = {} if w is None else {"logisticregression__sample_weight": w}
    return make_pipeline(StandardScaler(), _lr()).fit(X, y, **params)


class _FinalStepWeighted(ClassifierMixin, BaseEstimator):
    """Reference model: the pipeline, its weights handed to the final step by hand."""

    def fit(self, X, y, sample_weight=None):
        with sklearn.config_context(enable_metadata_routing=False):
            self.pipe_ = _hand_fit(X, y, sample_weight)
        self.classes_ = self.pipe_.classes_
        return self

    def predict(self, X):
        return self.pipe_.predict(X)

    def predict_proba(self, X):
        return self.pipe_.predict_proba(X)


VALUATIONS = {
    "loo": lambda est: LOOValuation(est, scoring="neg_log_loss"),
    "tmc": lambda est: TMCShapley(est, scoring="neg_log_loss", max_iter=2, tol=None,
                                  truncation_tol=0, random_state=0),
    "beta": lambda est: BetaShapley(est, scoring="neg_log_loss", max_iter=2, tol=None,
                                    random_state=0),
    "banzhaf": lambda est: BanzhafValuation(est, scoring="neg_log_loss", max_iter=12, tol=None,
                                            random_state=0),
    "oob": lambda est: DataOOB(est, n_estimators=8, random_state=0),
}


def _fit_valuation(val, X, y, Xv, yv, w):
    if isinstance(val, DataOOB):
        return val.fit(X, y, sample_weight=w)
    return val.fit(X, y, X_val=Xv, y_val=yv, sample_weight=w)


@ROUTING
@pytest.mark.parametrize("name", list(VALUATIONS))
def test_refit_valuations_weight_the_final_step(data, name, routing):
    X, y, Xv, yv, w = data
    make = VALUATIONS[name]
    ref = _fit_valuation(make(_FinalStepWeighted()), X, y, Xv, yv, w)
    with sklearn.config_context(enable_metadata_routing=routing):
        got = _fit_valuation(make(_pipe(routing)), X, y, Xv, yv, w)
    np.testing.assert_allclose(got.values_, ref.values_, **EXACT)
    np.testing.assert_allclose(got.estimator_[-1].coef_, ref.estimator_.pipe_[-1].coef_,
                               **EXACT)
    if name == "loo":  # the weights matter: the comparison is not between unweighted fits
        unweighted = make(_FinalStepWeighted()).fit(X, y, X_val=Xv, y_val=yv)
        assert np.abs(unweighted.values_ - ref.values_).max() > 1e-3


@ROUTING
def test_influence_functions_and_valuation_weight_the_final_step(data, routing):
    X, y, Xv, yv, w = data
    hand = FrozenEstimator(_hand_fit(X, y, w))
    ref = InfluenceFunctions(hand).fit(X, y, sample_weight=w).transform(Xv, yv)
    ref_values = InfluenceValuation(hand).fit(X, y, X_val=Xv, y_val=yv, sample_weight=w).values_
    with sklearn.config_context(enable_metadata_routing=routing):
        infl = InfluenceFunctions(_pipe(routing)).fit(X, y, sample_weight=w)
        got = infl.transform(Xv, yv)
        values = InfluenceValuation(_pipe(routing)).fit(
            X, y, X_val=Xv, y_val=yv, sample_weight=w).values_
    np.testing.assert_allclose(infl.estimator_[-1].coef_, hand.estimator[-1].coef_, **EXACT)
    np.testing.assert_allclose(got, ref, **EXACT)
    np.testing.assert_allclose(values, ref_values, **EXACT)
    unweighted = InfluenceFunctions(_hand_fit(X, y, None)).fit(X, y).transform(Xv, yv)
    assert np.abs(unweighted - ref).max() > 1e-3


@ROUTING
def test_cleaners_weight_the_final_step(data, routing):
    X, y, _, _, w = data
    hand = _hand_fit(X, y, w)
    ref_loo = InfluenceCleaner(FrozenEstimator(hand)).fit(X, y, sample_weight=w)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ref_cv = cross_val_predict(make_pipeline(StandardScaler(), _lr()), X, y, cv=cv,
                               method="predict_proba",
                               params={"logisticregression__sample_weight": w})
    with sklearn.config_context(enable_metadata_routing=routing):
        loo = InfluenceCleaner(_pipe(routing)).fit(X, y, sample_weight=w)
        by_cv = InfluenceCleaner(_pipe(routing), method="cross_val", cv=3).fit(
            X, y, sample_weight=w)
        clf = CleanClassifier(_pipe(routing), fraction=0.1).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(loo.estimator_[-1].coef_, hand[-1].coef_, **EXACT)
    np.testing.assert_allclose(loo.proba_, ref_loo.proba_, **EXACT)
    np.testing.assert_allclose(loo.scores_, ref_loo.scores_, **EXACT)
    np.testing.assert_allclose(by_cv.proba_, ref_cv, **EXACT)
    # the cleaned model: the kept points refitted with their weights
    np.testing.assert_allclose(clf.cleaner_.scores_, ref_loo.scores_, **EXACT)
    keep = ~clf.cleaned_mask_
    assert keep.sum() == 36
    kept_fit = _hand_fit(X[keep], y[keep], w[keep])
    np.testing.assert_allclose(clf.estimator_[-1].coef_, kept_fit[-1].coef_, **EXACT)


def test_cross_val_cleaner_weights_a_plain_estimator_with_routing_on(data):
    # a router passes only requested metadata; a plain model's fit takes its weights anyway
    X, y, _, _, w = data
    off = InfluenceCleaner(_lr(), method="cross_val", cv=3).fit(X, y, sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        model = _lr()
        on = InfluenceCleaner(model, method="cross_val", cv=3).fit(X, y, sample_weight=w)
        assert not model.get_metadata_routing().consumes("fit", ["sample_weight"])
    np.testing.assert_allclose(on.proba_, off.proba_, **EXACT)


def test_routing_on_final_step_must_take_the_weights(data):
    # the influence objective is the final step's weighted loss: refusing the weights there
    # would explain a different model than the one fitted
    X, y, _, _, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        pipe = make_pipeline(scaler, _lr().set_fit_request(sample_weight=False))
        for est in (InfluenceFunctions(pipe), InfluenceCleaner(pipe)):
            with pytest.raises(ValueError, match="set_fit_request\\(sample_weight=True\\)"):
                est.fit(X, y, sample_weight=w)
        # refit-based valuation fits the pipeline as configured (the scaler is weighted)
        LOOValuation(pipe).fit(X[:10], y[:10], X_val=X[10:], y_val=y[10:], sample_weight=w[:10])


def test_nested_pipeline_weights_reach_the_innermost_final_step(data):
    from skinfluence.utils._routing import fit_weighted, weight_fit_params

    X, y, _, _, w = data
    nested = make_pipeline(StandardScaler(), make_pipeline(StandardScaler(), _lr()))
    assert list(weight_fit_params(nested, w)) == [
        "pipeline__logisticregression__sample_weight"]
    fit_weighted(nested, X, y, w)
    inner = make_pipeline(StandardScaler(), StandardScaler(), _lr())
    inner.fit(X, y, logisticregression__sample_weight=w)
    np.testing.assert_allclose(nested[-1][-1].coef_, inner[-1].coef_, **EXACT)
    assert weight_fit_params(nested, None) == {}
