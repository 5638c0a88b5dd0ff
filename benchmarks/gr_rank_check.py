"""How well do rollback scores rank candidates by their actual effect?

For random Nations test queries the model's filtered top-1 tail ``t'`` is
explained; each query's candidates (the top 4 of every method plus 8 random
neighbourhood triples) are removed one at a time (``sample_weight=0``, same
random stream) and the model retrained.  Printed: per method, the Spearman
correlation between its predicted drop of ``p(t' | h, r)`` and the actual drop,
per query and on average.

Run::

    python benchmarks/gr_rank_check.py --queries 12       # about 3 min on 2 cores
"""

import argparse

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from gr_evaluation import CONFIG, neighbourhood
from skinfluence import DistMult, GradientRollback
from skinfluence.datasets import load_nations


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1, help="query and candidate sampling")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()

    data = load_nations()
    Xtr = data.train
    n = Xtr.shape[0]

    def make():
        return DistMult(n_entities=data.n_entities, n_relations=data.n_relations,
                        random_state=0, **CONFIG)

    methods = {
        "GRtr": GradientRollback(make(), rollback="trajectory", scope="all").fit(Xtr),
        "GRfo": GradientRollback(make(), rollback="first_order", scope="all").fit(Xtr),
        "GR": GradientRollback(make(), rollback="full", scope="all").fit(Xtr),
    }
    model = methods["GRfo"].estimator_
    queries = np.unique(data.test[:, :2], axis=0)
    rng = np.random.default_rng(args.seed)
    qs = queries[rng.choice(queries.shape[0], args.queries, replace=False)]
    known = {}
    for h, r, t in np.concatenate([data.train, data.valid]):
        known.setdefault((h, r), []).append(t)
    p0 = model.predict_proba(qs)

    plan = []  # (query, top-1, candidates, predicted drops per method)
    for a, (h, r) in enumerate(qs):
        p = p0[a].copy()
        p[known.get((h, r), [])] = -1.0
        t = int(p.argmax())
        cand = neighbourhood(Xtr, h, r, t)
        triple = np.array([[h, r, t]])
        pred = {name: gr.transform(triple).toarray().ravel() for name, gr in methods.items()}
        pick = set(rng.choice(cand, min(8, cand.size), replace=False))
        for v in pred.values():
            pick |= set(cand[np.argsort(-v[cand])[:4]])
        plan.append((a, t, np.array(sorted(pick)), pred))

    def retrain(j):
        sw = np.ones(n)
        sw[j] = 0.0
        return make().fit(Xtr, sample_weight=sw).predict_proba(qs)

    jobs = sorted({int(j) for _, _, pick, _ in plan for j in pick})
    with threadpool_limits(1):
        probs = dict(zip(jobs, Parallel(n_jobs=args.n_jobs)(delayed(retrain)(j) for j in jobs)))
    rho = {name: [] for name in methods}
    sizes = []
    for a, t, pick, pred in plan:
        actual = np.array([p0[a, t] - probs[int(j)][a, t] for j in pick])
        sizes.append(pick.size)
        for name, v in pred.items():
            rho[name].append(spearmanr(actual, v[pick])[0])
    print(f"Nations / DistMult, {len(qs)} queries, {np.mean(sizes):.1f} candidates each "
          f"({len(jobs)} retrainings): Spearman correlation of predicted and actual drops")
    for name, v in rho.items():
        print(f"  {name:5s} mean {np.mean(v):.3f}   per query {np.round(v, 2).tolist()}")


if __name__ == "__main__":
    main()
