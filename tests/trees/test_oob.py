"""Out-of-bag predictions of fitted forests in InfluenceCleaner and DataOOB."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceCleaner
from skinfluence.datasets import make_noisy_labels
from skinfluence.valuation import DataOOB

X_CLF, Y_CLF = load_breast_cancer(return_X_y=True)
X_REG, Y_REG = load_diabetes(return_X_y=True)


def test_cleaner_uses_the_forests_out_of_bag_probabilities():
    y_noisy, flipped = make_noisy_labels(Y_CLF, 0.1, random_state=0)
    forest = RandomForestClassifier(100, oob_score=True, random_state=0)
    reference = forest.fit(X_CLF, y_noisy).oob_decision_function_
    cleaner = InfluenceCleaner(RandomForestClassifier(100, random_state=0)).fit(X_CLF, y_noisy)
    np.testing.assert_allclose(cleaner.proba_, reference, atol=1e-12)
    assert cleaner.influence_ is None  # no influence engine, no refit
    precision = (cleaner.issues_ & flipped).sum() / cleaner.n_issues_
    recall = (cleaner.issues_ & flipped).sum() / flipped.sum()
    assert precision > 0.7 and recall > 0.7
    # an already fitted forest: not refit, the same flags
    frozen = InfluenceCleaner(FrozenEstimator(forest)).fit(X_CLF, y_noisy)
    np.testing.assert_array_equal(frozen.issues_, cleaner.issues_)
    assert frozen.estimator_.estimator is forest


def test_cleaner_pipeline_forest_and_too_few_trees():
    model = make_pipeline(StandardScaler(), RandomForestClassifier(3, random_state=0))
    with pytest.warns(UserWarning, match="in the bootstrap sample of every tree"):
        cleaner = InfluenceCleaner(model).fit(X_CLF[:200], Y_CLF[:200])
    assert cleaner.proba_.shape == (200, 2)
    assert np.allclose(cleaner.proba_.sum(axis=1), 1.0)


def test_cleaner_non_bagged_forest_uses_exact_leave_one_out():
    X, y = X_CLF[:80], Y_CLF[:80]
    model = RandomForestClassifier(3, bootstrap=False, max_features=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not a linear model" warning
        cleaner = InfluenceCleaner(model).fit(X, y)
    sw = np.ones(len(y))
    sw[4] = 0.0
    refit = RandomForestClassifier(3, bootstrap=False, max_features=None,
                                   random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(cleaner.proba_[4], refit.predict_proba(X[4:5])[0], atol=1e-12)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_data_oob_of_a_fitted_forest_uses_its_own_trees(task):
    if task == "classification":
        X, y, forest = X_CLF, Y_CLF, RandomForestClassifier(30, random_state=0)
    else:
        X, y, forest = X_REG, Y_REG, RandomForestRegressor(30, random_state=0)
    forest.fit(X, y)
    values = DataOOB(FrozenEstimator(forest)).fit(X, y)
    total, count = np.zeros(len(y)), np.zeros(len(y))
    for tree, idx in zip(forest.estimators_, forest.estimators_samples_):
        oob = np.ones(len(y), bool)
        oob[idx] = False
        pred = tree.predict(X[oob].astype(np.float32))
        if task == "classification":
            score = (forest.classes_[pred.astype(int)] == y[oob]).astype(float)
        else:
            score = -((pred - y[oob]) ** 2)
        total[oob] += score
        count[oob] += 1
    np.testing.assert_allclose(values.values_, total / count, rtol=1e-12)
    np.testing.assert_array_equal(values.n_oob_, count)
    assert values.estimator_ is values.estimator  # the frozen forest, not refit


def test_regression_cleaner_uses_out_of_bag_predictions():
    rng = np.random.default_rng(0)
    X, y = X_REG[:200], Y_REG[:200].copy()
    shifted = rng.choice(200, 10, replace=False)
    y[shifted] += 3 * y.std()
    forest = RandomForestRegressor(60, min_samples_leaf=5, random_state=0)
    reference = forest.set_params(oob_score=True).fit(X, y).oob_prediction_
    cleaner = InfluenceCleaner(RandomForestRegressor(60, min_samples_leaf=5, random_state=0))
    cleaner.fit(X, y)
    assert cleaner.task_ == "regression" and cleaner.influence_ is None
    np.testing.assert_allclose(cleaner.predictions_, reference, rtol=1e-12)
    assert np.isin(np.flatnonzero(cleaner.issues_), shifted).mean() >= 0.8


def test_regression_cleaner_non_bagged_tree_is_exact_leave_one_out():
    from sklearn.base import clone
    from sklearn.tree import DecisionTreeRegressor

    X, y = X_REG[:80], Y_REG[:80]
    tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=0)
    cleaner = InfluenceCleaner(tree).fit(X, y)
    for j in (0, 13, 41):
        w = np.ones(80)
        w[j] = 0.0
        refit = clone(tree).fit(X, y, sample_weight=w)
        assert cleaner.predictions_[j] == pytest.approx(refit.predict(X[j:j + 1])[0], rel=1e-12)


# ---------------------------------------------------------------- every tree's leave-one-out
def _tree_counts(tree):
    return tree.value[:, 0, :] * tree.weighted_n_node_samples[:, None]


def _read_loo(tree, X, w, codes):
    from skinfluence.trees._oob_kernels import tree_loo_counts

    out, case = np.zeros((len(codes), tree.value.shape[2])), np.zeros(len(codes), np.intp)
    leaf = np.empty(len(codes), np.intp)
    tree_loo_counts(tree.children_left, tree.children_right, tree.feature, tree.threshold,
                    tree.missing_go_to_left, _tree_counts(tree), X, w, codes, out, case, leaf)
    np.testing.assert_array_equal(leaf, tree.apply(np.ascontiguousarray(X, np.float32)))
    return out / out.sum(axis=1, keepdims=True), case


def _reference_loo(tree, X, w, codes):
    """The reading of ``tree_loo_counts`` written out with explicit row sets per node."""
    L, R, F, T = tree.children_left, tree.children_right, tree.feature, tree.threshold
    counts = _tree_counts(tree)
    seen = np.flatnonzero(w > 0)

    def leaf_from(node, x):
        while L[node] >= 0:
            node = L[node] if x[F[node]] <= T[node] else R[node]
        return node

    def rows_at(node):  # the seen rows whose path passes through node
        return [j for j in seen if node in path(X[j])]

    def path(x):
        nodes, node = [0], 0
        while L[node] >= 0:
            node = L[node] if x[F[node]] <= T[node] else R[node]
            nodes.append(node)
        return nodes

    P = np.zeros((len(codes), counts.shape[1]))
    for i in range(len(codes)):
        x = X[i]
        nodes = path(x)
        if w[i] == 0:
            P[i] = counts[nodes[-1]] / counts[nodes[-1]].sum()
            continue
        result = None
        for node in nodes[:-1]:
            members = rows_at(node)
            left = [j for j in members if X[j, F[node]] <= T[node]]
            right = [j for j in members if X[j, F[node]] > T[node]]
            mine, theirs = (left, right) if x[F[node]] <= T[node] else (right, left)
            own = np.array([X[j, F[node]] for j in mine])
            nearest = own.max() if mine is left else own.min()
            if [j for j in mine if X[j, F[node]] == nearest] != [i]:
                continue  # several rows at the nearest value (or not this row)
            other = R[node] if mine is left else L[node]
            rest = own[own != nearest]
            if rest.size == 0:  # alone on its side
                result = counts[leaf_from(other, x)]
                break
            lo = rest.max() if mine is left else max(X[j, F[node]] for j in theirs)
            hi = min(X[j, F[node]] for j in theirs) if mine is left else rest.min()
            moved = np.float64(lo) / 2.0 + np.float64(hi) / 2.0
            moved = lo if moved == hi else moved
            if (x[F[node]] > moved) if mine is left else (x[F[node]] <= moved):
                result = counts[leaf_from(other, x)]
                break
        if result is None:
            result = counts[nodes[-1]].copy()
            result[codes[i]] = max(result[codes[i]] - w[i], 0.0)
        P[i] = result / result.sum()
    return P


# 1-D rows in class blocks, two of them mislabelled inside the other class's range, with
# repeated (bootstrap-like) weights and a row left out: removing any one row leaves every
# remaining split where it was up to its threshold, so the read is the regrown tree (not
# so in general: benchmarks/bench_cleaning_forest.py --inbag measures how often)
TOY_X = np.array([[0], [1], [2], [3], [4], [10], [11], [12], [13], [5.5]], dtype=np.float32)
TOY_Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
TOY_W = np.array([1, 2, 1, 1, 1, 1, 0, 2, 1, 1], dtype=np.float64)


def test_tree_loo_read_is_the_regrown_tree_on_a_toy():
    from sklearn.tree import DecisionTreeClassifier

    def tree(w):
        return DecisionTreeClassifier(random_state=0).fit(TOY_X, TOY_Y, sample_weight=w)

    P, case = _read_loo(tree(TOY_W).tree_, TOY_X, TOY_W, TOY_Y.astype(np.intp))
    assert set(case[TOY_W > 0]) == {0, 1, 2}  # kept, moved across, split vanished
    assert P[4].tolist() == [1.0, 0.0] and P[9].tolist() == [0.0, 1.0]  # the two flips
    for i in np.flatnonzero(TOY_W > 0):
        w = TOY_W.copy()
        w[i] = 0.0
        np.testing.assert_allclose(P[i], tree(w).predict_proba(TOY_X[i:i + 1])[0],
                                   rtol=0, atol=1e-12)
    assert (case[TOY_W == 0] == -1).all()


@pytest.mark.parametrize("data", ["breast_cancer", "wine_balanced_subsample"])
def test_all_tree_proba_against_a_loop_by_loop_reference(data):
    from sklearn.datasets import load_wine

    from skinfluence.trees._oob import all_tree_proba, oob_proba

    if data == "breast_cancer":
        X, y = X_CLF[:120], make_noisy_labels(Y_CLF[:120], 0.2, random_state=0)[0]
        forest = RandomForestClassifier(6, random_state=0).fit(X, y)
    else:
        X, y = load_wine(return_X_y=True)
        forest = RandomForestClassifier(6, class_weight="balanced_subsample", max_depth=4,
                                        random_state=0).fit(X, y)
    codes = np.searchsorted(forest.classes_, y)
    P_all, P_oob = all_tree_proba(forest, X, codes)
    np.testing.assert_allclose(P_oob, oob_proba(forest, X), rtol=0, atol=1e-12)
    Xf = X.astype(np.float32)
    total = np.zeros_like(P_all)
    for tree, indices in zip(forest.estimators_, forest.estimators_samples_):
        w = np.bincount(indices, minlength=len(y)).astype(np.float64)
        if forest.class_weight == "balanced_subsample":
            classes, n_drawn = np.unique(codes[indices], return_counts=True)
            per_class = np.zeros(len(forest.classes_))
            per_class[classes] = len(indices) / (len(forest.classes_) * n_drawn)
            w *= per_class[codes]
        total += _reference_loo(tree.tree_, Xf, w, codes)
    np.testing.assert_allclose(P_all, total / len(forest.estimators_), rtol=0, atol=1e-12)
    assert np.abs(P_all - P_oob).max() > 0.01  # the trees that saw the rows count


def test_all_tree_proba_refuses_random_thresholds():
    from sklearn.ensemble import ExtraTreesClassifier

    model = ExtraTreesClassifier(5, bootstrap=True, random_state=0)
    with pytest.raises(ValueError, match="draws its split thresholds at random"):
        InfluenceCleaner(model, forest_trees="all").fit(X_CLF[:100], Y_CLF[:100])


def test_all_tree_proba_of_a_forest_fitted_on_other_labels_warns():
    from skinfluence.trees._oob import all_tree_proba, oob_proba

    X, y = X_CLF[:120], Y_CLF[:120]
    forest = RandomForestClassifier(20, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="do not hold these training rows"):
        P_all, P_oob = all_tree_proba(forest, X, 1 - y)
    assert P_all is None
    np.testing.assert_array_equal(P_oob, oob_proba(forest, X))


def test_cleaner_forest_trees_all_counts_out_of_bag_and_ranks_by_every_tree():
    from skinfluence.cleaning import confident_joint, estimate_joint
    from skinfluence.trees._oob import all_tree_proba

    X, y = X_CLF[::2], Y_CLF[::2]
    y_noisy, flipped = make_noisy_labels(y, 0.2, random_state=0)
    cleaner = InfluenceCleaner(RandomForestClassifier(40, random_state=0),
                               forest_trees="all").fit(X, y_noisy)
    forest = RandomForestClassifier(40, oob_score=True, random_state=0).fit(X, y_noisy)
    P_oob = forest.oob_decision_function_
    np.testing.assert_allclose(cleaner.proba_, P_oob, rtol=1e-12, atol=1e-15)  # the counts'
    P_all, _ = all_tree_proba(forest, X, y_noisy)
    rows = np.arange(len(y_noisy))
    np.testing.assert_allclose(cleaner.scores_, 1 - P_all[rows, y_noisy], rtol=0, atol=1e-12)
    # prune_globally by its definition: the n (1 - trace Q) rows of lowest all-tree
    # probability of their label, Q from the out-of-bag probabilities
    Q = estimate_joint(confident_joint(y_noisy, P_oob)[0], np.bincount(y_noisy))
    k = int(round(len(y_noisy) * (1 - np.trace(Q))))
    expected = np.zeros(len(y_noisy), bool)
    expected[np.argsort(P_all[rows, y_noisy], kind="stable")[:k]] = True
    np.testing.assert_array_equal(cleaner.issues_, expected)
    assert k > 20 and (cleaner.issues_ & flipped).sum() / k > 0.7
    default = InfluenceCleaner(RandomForestClassifier(40, random_state=0)).fit(X, y_noisy)
    assert not np.array_equal(default.scores_, cleaner.scores_)  # opt-in only
    frozen = InfluenceCleaner(FrozenEstimator(forest), forest_trees="all").fit(X, y_noisy)
    np.testing.assert_array_equal(frozen.issues_, cleaner.issues_)
    with pytest.raises(ValueError, match="forest was fitted on the classes"):
        InfluenceCleaner(FrozenEstimator(forest), forest_trees="all").fit(X, y_noisy + 1)
