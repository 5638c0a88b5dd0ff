"""dattri 0.3.0 attributions of the *same* fitted scikit-learn models, for faithfulness.py.

Each fitted model (LogisticRegression, MLPClassifier; SGD checkpoints for TracIn) is
copied into an equivalent torch module with the same parameters, and its training
objective is written as dattri's loss function:

* the loss of a batch is ``mean_i loss_i + P / n``, with ``P`` the model's own penalty
  in sum form (``||W||^2 / (2C)`` for LogisticRegression, ``alpha ||W||^2 / 2`` for
  MLPClassifier, intercepts unpenalised): on the full training set (the batch dattri
  builds its Hessian from) the training objective over ``n``, and an unbiased estimate
  of it on LiSSA's mini-batches; the loss of one point (whose gradient dattri
  attributes with) is its loss alone, as removing it removes no penalty;
* the target of a test point is its loss (no penalty), as in the library's rows.

dattri returns ``g_train . H^-1 g_test`` (a positive value: the point helps), the
library's sign.  Attributions are returned as ``(n_test, n_train)`` numpy arrays; their
scale is irrelevant to the LDS and to the LOO correlation.

Only imported when dattri and torch are installed (``pip install .[bench]``).
"""

import numpy as np
import torch
from dattri.algorithm import (
    IFAttributorCG,
    IFAttributorExplicit,
    IFAttributorLiSSA,
    TracInAttributor,
    TRAKAttributor,
)
from dattri.task import AttributionTask
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neural_network import MLPClassifier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.set_default_dtype(torch.float64)

LISSA_DEPTH = 1000
TRAK_PROJ = None


class _Net(nn.Module):
    """Dense layers with tanh between them: a linear model when there is one layer."""

    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        x = x.to(self.layers[0].weight.dtype)  # LiSSA's collate casts the data to float32
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


def _weights(model):
    """[(W (out, in), b (out,))] of a fitted sklearn model, and whether its outputs are
    independent sigmoids (binary, or SGD's one-vs-rest) rather than a softmax."""
    if isinstance(model, MLPClassifier):
        layers = [(W.T, b) for W, b in zip(model.coefs_, model.intercepts_)]
        return layers, model.out_activation_ == "logistic"
    return [(model.coef_, model.intercept_)], (len(model.classes_) == 2
                                               or isinstance(model, SGDClassifier))


def _state_dict(model):
    layers, _ = _weights(model)
    state = {}
    for k, (W, b) in enumerate(layers):
        state[f"layers.{k}.weight"] = torch.tensor(np.array(W, dtype=np.float64))
        state[f"layers.{k}.bias"] = torch.tensor(np.array(b, dtype=np.float64))
    return state


def _penalty_factor(model, n):
    """Coefficient ``c`` of the mean-form penalty ``c * sum ||W||^2`` (weights only)."""
    if isinstance(model, LogisticRegression):
        return 1.0 / (2.0 * model.C * n)
    if isinstance(model, MLPClassifier):
        return model.alpha / (2.0 * n)
    if isinstance(model, SGDClassifier):  # SGD's per-sample objective: loss_i + alpha/2 ||w||^2
        return model.alpha / 2.0
    raise TypeError(type(model).__name__)


def _losses(net, sigmoid_outputs):
    """Per-sample loss of the torch net on (x, class index)."""

    def per_sample(params, x, y):
        if x.ndim == 1:  # TRAK and TracIn vmap over single points without a batch axis
            x, y = x.unsqueeze(0), y.unsqueeze(0)
        z = torch.func.functional_call(net, params, (x,))
        y = y.long()
        if sigmoid_outputs and z.shape[1] == 1:  # binary: one logit for class 1
            return nn.functional.binary_cross_entropy_with_logits(
                z[:, 0], y.to(z.dtype), reduction="none")
        if sigmoid_outputs:  # one-vs-rest: a sigmoid per class
            # one_hot reads the largest label (.item()), which vmap forbids
            t = (y[:, None] == torch.arange(z.shape[1])).to(z.dtype)
            return nn.functional.binary_cross_entropy_with_logits(
                z, t, reduction="none").sum(dim=1)
        return nn.functional.cross_entropy(z, y, reduction="none")

    return per_sample


def _task(net, model, n, checkpoints, *, margin=False):
    sigmoid = _weights(model)[1]
    per_sample = _losses(net, sigmoid)
    c = _penalty_factor(model, n)

    def penalty(params):
        return c * sum((p ** 2).sum() for name, p in params.items() if name.endswith("weight"))

    def loss_func(params, data):
        x, y = data
        loss = per_sample(params, x, y).mean()
        # a batch (the Hessian's): the objective over n; one point (its gradient): its loss
        return loss + penalty(params) if x.ndim > 1 and x.shape[0] > 1 else loss

    def target_func(params, data):
        x, y = data
        return per_sample(params, x, y).mean()

    def log_odds(params, data):
        # TRAK's output function: log(p / (1 - p)) of the correct class
        x, y = data
        logp = -per_sample(params, x, y).mean()
        return logp - torch.log1p(-torch.exp(logp).clamp(max=1 - 1e-12))

    def correct_probability(params, data):
        x, y = data
        return torch.exp(-per_sample(params, x.unsqueeze(0), y.unsqueeze(0)).mean())

    if margin:
        return AttributionTask(log_odds, net, checkpoints), correct_probability
    return AttributionTask(loss_func, net, checkpoints, target_func=target_func)


def _loader(X, y, batch_size):
    data = TensorDataset(torch.tensor(np.asarray(X, dtype=np.float64)),
                         torch.tensor(np.asarray(y, dtype=np.int64)))
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def _encode(model, y):
    return np.searchsorted(model.classes_, y)


def _n_params(model):
    return sum(W.size + b.size for W, b in _weights(model)[0])


def _net_for(model):
    layers, _ = _weights(model)
    sizes = [np.asarray(layers[0][0]).shape[1]] + [np.asarray(W).shape[0] for W, _ in layers]
    return _Net(sizes)


def attributions(method, model, X, y, X_test, y_test, *, tracin=None, trak_models=None,
                 regularization=0.0):
    """``(n_test, n_train)`` attributions of dattri's ``method`` for the fitted ``model``.

    ``method``: ``"explicit"``, ``"cg"``, ``"lissa"``, ``"trak"`` (``trak_models``: the
    fitted models TRAK ensembles, default ``[model]``) or ``"tracin"`` (``tracin``: the
    library's fitted :class:`~skinfluence.TracIn`, whose checkpoints and learning rates
    dattri sums over, so both TracIns trace the same SGD trajectory).
    """
    n = len(y)
    yt, ytt = _encode(model, y), _encode(model, y_test)
    # one batch each: dattri transforms the test gradients again for every training batch
    train = _loader(X, yt, n)
    test = _loader(X_test, ytt, len(y_test))
    net = _net_for(model)
    if method == "tracin":
        ckpts = [_state_dict(m) for m in tracin.checkpoints_]
        task = _task(net, tracin.checkpoints_[0], n, ckpts)
        p = _n_params(tracin.checkpoints_[0])
        attributor = TracInAttributor(
            task, weight_list=torch.tensor(np.asarray(tracin.learning_rates_, float)),
            normalized_grad=False, projector_kwargs={"proj_dim": p, "proj_seed": 0})
        scores = attributor.attribute(train, test)
        return scores.detach().numpy().T
    if method == "trak":
        models = trak_models or [model]
        task, prob = _task(net, model, n, [_state_dict(m) for m in models], margin=True)
        # well below n: the projected kernel Phi^T Phi (proj x proj) is then invertible
        # (100 was the best of 100, 200 and 512 on the MLP and digits, 20 subsets)
        proj = TRAK_PROJ or min(512, _n_params(model), n // 4)
        attributor = TRAKAttributor(task, prob, projector_kwargs={
            "proj_dim": proj, "proj_seed": 0}, regularization=regularization)
        attributor.cache(train)
        return attributor.attribute(test).detach().numpy().T
    task = _task(net, model, n, _state_dict(model))
    if method == "explicit":
        attributor = IFAttributorExplicit(task, regularization=regularization)
    elif method == "cg":
        attributor = IFAttributorCG(task, max_iter=100, regularization=regularization)
    elif method == "lissa":
        # scaling above the largest eigenvalue of a mini-batch Hessian; damping 0 (the
        # penalty already makes the GLM Hessians definite)
        attributor = IFAttributorLiSSA(task, batch_size=32, num_repeat=1,
                                       recursion_depth=LISSA_DEPTH, damping=regularization,
                                       scaling=50.0)
    else:
        raise ValueError(method)
    attributor.cache(train)
    return attributor.attribute(train, test).detach().numpy().T
