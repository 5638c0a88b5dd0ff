"""Tests for skinfluence.plot: what is drawn matches the data given."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="skinfluence.plot needs matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skinfluence.plot import (  # noqa: E402
    plot_cleaning_curve,
    plot_explanation,
    plot_faithfulness,
    plot_removal_curve,
    plot_retraining,
    plot_value_distribution,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


EXPL = {
    "helpful_indices": np.array([[3, 1, 4], [0, 2, 5]]),
    "helpful_values": np.array([[0.5, 0.2, 0.1], [0.9, 0.3, 0.2]]),
    "harmful_indices": np.array([[6, 7, 8], [9, 1, 3]]),
    "harmful_values": np.array([[-0.4, -0.3, -0.05], [-0.8, -0.1, -0.01]]),
}


def test_plot_cleaning_curve_draws_the_brute_force_curve():
    rng = np.random.default_rng(0)
    scores = rng.random(57)
    noisy = rng.random(57) < 0.2
    ax = plot_cleaning_curve(noisy, scores, label="m")
    line = ax.get_lines()[0]
    order = np.argsort(-scores)
    expected = [noisy[order[:m]].sum() / noisy.sum() for m in range(58)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    np.testing.assert_allclose(line.get_xdata(), np.arange(58) / 57)
    # area under the step curve, as the legend reports it
    auc = float(line.get_label().split("AUC ")[1].rstrip(")"))
    assert line.get_label().startswith("m (AUC ")
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    assert auc == pytest.approx(trapezoid(expected, np.arange(58) / 57), abs=5e-4)


def test_plot_cleaning_curve_draws_each_method_and_baselines():
    rng = np.random.default_rng(1)
    noisy = rng.random(100) < 0.1
    ax = plot_cleaning_curve(noisy, {"a": rng.random(100), "b": noisy + rng.random(100)})
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("a (AUC") and labels[1].startswith("b (AUC")
    assert labels[2:] == ["random order", "perfect ranking"]
    # scores that put every noisy row first reach 1 at the noise rate
    found = ax.get_lines()[1].get_ydata()
    assert found[int(noisy.sum())] == 1.0 and found[int(noisy.sum()) - 1] < 1.0
    np.testing.assert_allclose(ax.get_lines()[3].get_xdata(), [0, noisy.mean(), 1])
    with pytest.raises(ValueError, match="NaN"):
        plot_cleaning_curve([True, False], [np.nan, 2.0])


def test_plot_explanation_bars_follow_values_and_labels():
    y = np.array(list("abcdefghij"))
    ax = plot_explanation(EXPL, y_train=y, index=1, k=2)
    widths = [p.get_width() for p in ax.patches]
    # helpful (largest first) then harmful, the most harmful last
    np.testing.assert_allclose(widths, [0.9, 0.3, -0.1, -0.8])
    # read top to bottom: bar y positions decrease, each labelled with its training row
    by_height = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    assert [text for _, text in by_height[::-1]] == ["#0 (y=a)", "#2 (y=c)", "#1 (y=b)", "#9 (y=j)"]
    bar_y = [p.get_y() + p.get_height() / 2 for p in ax.patches]
    assert bar_y == sorted(bar_y, reverse=True)


def test_plot_explanation_images():
    X = np.arange(10 * 16, dtype=float).reshape(10, 16)
    fig = plot_explanation(EXPL, X, np.arange(10), image_shape=(4, 4))
    images = [a.get_images()[0].get_array() for a in fig.axes if a.get_images()]
    assert len(images) == 6
    np.testing.assert_array_equal(images[0], X[3].reshape(4, 4))
    np.testing.assert_array_equal(images[3], X[6].reshape(4, 4))
    fig = plot_explanation(EXPL, X, np.arange(10), image_shape=(4, 4), query=-X[0],
                           query_label="pred 3")
    images = [a.get_images()[0].get_array() for a in fig.axes if a.get_images()]
    assert len(images) == 7
    np.testing.assert_array_equal(images[0], -X[0].reshape(4, 4))
    np.testing.assert_array_equal(images[1], X[3].reshape(4, 4))
    assert fig.axes[0].get_title() == "pred 3"
    with pytest.raises(ValueError, match="query has 3 features"):
        plot_explanation(EXPL, X, image_shape=(4, 4), query=[1, 2, 3])
    with pytest.raises(ValueError, match="needs 9 features"):
        plot_explanation(EXPL, X, image_shape=(3, 3))
    with pytest.raises(ValueError, match="X_train is required"):
        plot_explanation(EXPL, image_shape=(4, 4))
    with pytest.raises(ValueError, match="out of range"):
        plot_explanation(EXPL, index=5)


def test_plot_value_distribution_counts():
    values = np.concatenate([np.zeros(30), np.ones(10)])
    groups = np.array(["clean"] * 30 + ["flipped"] * 10)
    ax = plot_value_distribution(values, groups, bins=4)
    totals = {}
    for container, text in zip(ax.containers, ax.get_legend().get_texts()):
        totals[text.get_text()] = sum(p.get_height() for p in container)
    assert totals == {"clean": 30, "flipped": 10}
    with pytest.raises(ValueError, match="NaN"):
        plot_value_distribution([0.0, np.nan])
    with pytest.raises(ValueError, match="groups has shape"):
        plot_value_distribution([0.0, 1.0], [True])


def test_plot_retraining_reports_correlations():
    actual = np.array([0.1, 0.4, 0.2, 0.8])
    ax = plot_retraining(2 * actual, actual)
    assert ax.get_title() == "Pearson r = 1.000, Spearman rho = 1.000"
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], actual)
    np.testing.assert_allclose(offsets[:, 1], 2 * actual)
    with pytest.raises(ValueError, match="same length"):
        plot_retraining([1.0], [1.0, 2.0])


def test_plot_removal_curve_draws_the_curves():
    ax = plot_removal_curve([0.0, 0.1, 0.2], [0.9, 0.8, 0.7], label="high")
    plot_removal_curve([0.0, 0.1, 0.2], [0.9, 0.92, 0.93], label="low", ax=ax)
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.9, 0.92, 0.93])
    with pytest.raises(ValueError, match="same length"):
        plot_removal_curve([0.0, 0.1], [0.9])


def test_plot_faithfulness_draws_the_details_of_a_metric():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from skinfluence import InfluenceFunctions
    from skinfluence.metrics import linear_datamodeling_score

    X, y = load_diabetes(return_X_y=True)
    details = linear_datamodeling_score(InfluenceFunctions(Ridge()), X[:60], y[:60],
                                        X[100:105], y[100:105], n_subsets=6, random_state=0,
                                        return_details=True)
    ax = plot_faithfulness(details)
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], details.actual.ravel())
    np.testing.assert_allclose(offsets[:, 1], details.predicted.ravel())
    assert ax.get_title().startswith(f"LDS = {details.score:.3f}")
    ax = plot_faithfulness(details, test_point=2)
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], details.predicted[:, 2])
    with pytest.raises(ValueError, match="out of range"):
        plot_faithfulness(details, test_point=5)
