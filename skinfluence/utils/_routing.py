"""Fitting a wrapped estimator (possibly a Pipeline) with sample weights.

One rule for every meta-estimator of the library, with scikit-learn's metadata routing
off or on:

* routing off (scikit-learn's default): a :class:`~sklearn.pipeline.Pipeline` gets its
  weights on its final step (``<last step>__sample_weight``; a Pipeline does not accept
  ``sample_weight=`` itself), any other estimator as ``sample_weight=``;
* routing on (``sklearn.set_config(enable_metadata_routing=True)``): every estimator gets
  ``sample_weight=``, and a Pipeline hands it to the steps that asked for it with
  ``set_fit_request(sample_weight=True)``, as scikit-learn's own meta-estimators do.
"""

import sklearn
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import MetadataRouter, get_routing_for_object

__all__ = [
    "check_final_step_weighted",
    "fit_weighted",
    "routed_for_cv",
    "routing_enabled",
    "weight_fit_params",
]


def routing_enabled():
    """Whether scikit-learn's metadata routing is on (``enable_metadata_routing``)."""
    return bool(sklearn.get_config().get("enable_metadata_routing", False))


def _final_step(pipe):
    """``(parameter prefix, estimator)`` of a Pipeline's last step, through nested Pipelines."""
    name, step = pipe.steps[-1]
    if isinstance(step, Pipeline):
        prefix, final = _final_step(step)
        return f"{name}__{prefix}", final
    return name, step


def weight_fit_params(estimator, sample_weight):
    """The keyword arguments of ``estimator.fit`` that pass ``sample_weight`` (module rule).

    Returns ``{}`` when ``sample_weight`` is None.
    """
    if sample_weight is None:
        return {}
    if isinstance(estimator, Pipeline) and not routing_enabled():
        prefix, _ = _final_step(estimator)
        return {f"{prefix}__sample_weight": sample_weight}
    return {"sample_weight": sample_weight}


def check_final_step_weighted(estimator, sample_weight):
    """Raise if routing would keep ``sample_weight`` from a Pipeline's final step.

    For callers that rebuild the final estimator's weighted training objective
    (influence functions): its fit and the objective must use the same weights.
    """
    if sample_weight is None or not isinstance(estimator, Pipeline) or not routing_enabled():
        return
    _, final = _final_step(estimator)
    if final is None or isinstance(final, str):
        return  # "passthrough": the objective builder reports the unsupported step
    if "sample_weight" not in get_routing_for_object(final).consumes("fit", ["sample_weight"]):
        name = type(final).__name__
        raise ValueError(
            f"Metadata routing is enabled and the final step of the Pipeline ({name}) does "
            "not request sample_weight, so its fit would not see the weights that the "
            f"influence objective uses. Call {name}(...).set_fit_request(sample_weight=True) "
            "on the final step."
        )


def fit_weighted(estimator, X, y, sample_weight=None, *, final_step=False, **fit_params):
    """Fit ``estimator`` on ``(X, y)`` with ``sample_weight`` (module rule) and any other
    ``fit_params``; returns it.

    ``final_step=True``: the weights must reach the final step of a Pipeline
    (see :func:`check_final_step_weighted`).
    """
    if final_step:
        check_final_step_weighted(estimator, sample_weight)
    return estimator.fit(X, y, **weight_fit_params(estimator, sample_weight), **fit_params)


def routed_for_cv(estimator, sample_weight):
    """``(estimator, params)`` for a scikit-learn router such as ``cross_val_predict``.

    The router then fits ``estimator`` with the weights as :func:`fit_weighted`
    does.  With routing on, a plain estimator (a consumer, not a router) that has
    not requested ``sample_weight`` is set to request it: a direct ``fit`` call
    would use the weights, while a router passes only requested metadata.  This
    modifies ``estimator``: pass a clone.
    """
    if sample_weight is None:
        return estimator, {}
    if routing_enabled() and not isinstance(get_routing_for_object(estimator), MetadataRouter):
        if not get_routing_for_object(estimator).consumes("fit", ["sample_weight"]):
            estimator.set_fit_request(sample_weight=True)
    return estimator, weight_fit_params(estimator, sample_weight)
