"""``set_output(transform="pandas")`` on the transformers whose columns are training points."""

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunctions, TracIn
from skinfluence.valuation import InfluenceValuation, KNNShapley, LOOValuation


def _frames():
    X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"],
                      index=[f"row{i}" for i in range(50)])
    return df.iloc[:36], y[:36], df.iloc[36:], y[36:]


def _fit(name, X, y, Xv, yv, groups=None):
    if name == "influence":
        return InfluenceFunctions(make_pipeline(StandardScaler(), LogisticRegression())).fit(X, y)
    if name == "tracin":
        return TracIn(SGDClassifier(loss="log_loss", random_state=0), n_epochs=2,
                      random_state=0).fit(X, y)
    if name == "knn":
        return KNNShapley(3).fit(X, y)
    if name == "loo":
        return LOOValuation(LogisticRegression()).fit(X, y, X_val=Xv, y_val=yv, groups=groups)
    return InfluenceValuation(LogisticRegression()).fit(X, y, X_val=Xv, y_val=yv)


NAMES = ["influence", "tracin", "knn", "loo", "influence_valuation"]


@pytest.mark.parametrize("name", NAMES)
def test_pandas_output_columns_are_the_training_rows(name):
    X, y, Xq, yq = _frames()
    est = _fit(name, X, y, Xq, yq)
    expected = est.transform(Xq, yq)
    names = est.get_feature_names_out()
    assert names.dtype == object and list(names) == [f"row{i}" for i in range(36)]
    out = est.set_output(transform="pandas").transform(Xq, yq)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(X.index) and list(out.index) == list(Xq.index)
    np.testing.assert_array_equal(out.to_numpy(), expected)
    with config_context(transform_output="pandas"):  # the global setting too
        est.set_output(transform="default")
        assert isinstance(_fit(name, X, y, Xq, yq).transform(Xq, yq), pd.DataFrame)
    assert isinstance(est.transform(Xq, yq), np.ndarray)


@pytest.mark.parametrize("name", NAMES)
def test_pandas_output_after_fit_on_arrays(name):
    X, y, Xq, yq = _frames()
    X, Xq = X.to_numpy(), Xq.to_numpy()
    est = _fit(name, X, y, Xq, yq).set_output(transform="pandas")
    out = est.transform(Xq, yq)
    assert list(out.columns) == [f"train{i}" for i in range(36)]
    assert list(out.index) == list(range(14))
    # input_features are checked against the fitted features, not used for the columns
    assert list(est.get_feature_names_out(["x0", "x1", "x2", "x3"])) == list(out.columns)
    with pytest.raises(ValueError, match="input_features"):
        est.get_feature_names_out(["x0"])


def test_pandas_output_of_groups_and_default_index():
    X, y, Xq, yq = _frames()
    groups = np.repeat(["g1", "g2", "g3"], 12)
    loo = _fit("loo", X, y, Xq, yq, groups=groups).set_output(transform="pandas")
    assert list(loo.transform(Xq, yq).columns) == ["g1", "g2", "g3"]  # players are groups
    inf = _fit("influence", X.reset_index(drop=True), y, None, None)
    assert list(inf.get_feature_names_out()) == [str(i) for i in range(36)]


def test_feature_names_out_needs_fit():
    from sklearn.exceptions import NotFittedError

    for est in (InfluenceFunctions(LogisticRegression()), KNNShapley()):
        with pytest.raises(NotFittedError):
            est.get_feature_names_out()
