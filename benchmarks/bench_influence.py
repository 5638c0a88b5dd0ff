"""Speed of the influence matrix: skinfluence vs a naive numpy closed form, same run.

Cases (synthetic ``make_classification``, float64, ``LogisticRegression(C=1)``):

(a) binary, 1000 test x 50000 train, d=200     (target <= 0.5x naive, goal 0.35x)
(b) binary,  200 test x  5000 train, d=50      (target <= 2x naive after JIT warm-up)
(c) multinomial, 10 classes, 500 x 10000, d=64
(d) sparse CSR d=5000 (1% density): ``solver="cg"`` vs ``solver="exact"``
    (target: Pearson >= 0.999 and less time)

For each dense case and each ``approximation`` ("first_order", "newton"):

* skinfluence ``InfluenceFunctions(FrozenEstimator(est)).fit(X, y)`` (objective,
  Hessian, factorisation, training side; the estimator is *not* refit) and
  ``.transform(X_test, y_test)``, timed separately;
* the naive numpy closed form, written the way a numpy user would: per-sample
  gradient matrices, ``H`` built with numpy, ``np.linalg.inv(H)`` (``pinv`` for
  the multinomial model, whose Hessian is singular along the intercept shift),
  ``G_test @ Hinv @ (G_train * w).T``; for "newton" the leverages by einsum, the
  ``(I - w S M)`` correction and the exact loss re-evaluated on the full matrix
  (``np.logaddexp`` / ``scipy.special.logsumexp``).  Its "prep" is the
  training-side work, its "query" the test-side work;
* the max abs difference of the two matrices;
* the DGEMM roofline of the influence GEMM, ``2 * n_test * n_train * p / FLOP/s``
  with FLOP/s measured here on a 4000x4000 product (best of 3), and the time of the
  same-size product ``(n_test, p) @ (p, n_train)`` into a preallocated array
  (``gemm_same``) timed beside ``transform(X, y, out=...)`` into the same array
  (``transform_out``; ``out/gemm`` their ratio).

All times are best-of-k wall seconds (k in the table header); numba kernels are
warmed up on a tiny problem before anything is timed.

Run::

    python benchmarks/bench_influence.py             # all cases (~3-5 min on 2 cores)
    python benchmarks/bench_influence.py --quick     # smaller sizes, 1 repeat
    python benchmarks/bench_influence.py --profile   # + cProfile of case (a)
    python benchmarks/bench_influence.py --threads 1 # one BLAS/numba thread (loaded machine)

Reference (issue): pyDVL 0.10 ``DirectInfluence`` took 2.6x the naive numpy
time on (a) and 100x on (b).
"""

import argparse
import cProfile
import gc
import io
import os
import pstats
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceFunctions
from skinfluence.objectives import make_objective
from skinfluence.linalg import make_solver

try:  # run as a script from the repository root or from benchmarks/
    from benchmarks._common import Timer, best_of, dgemm_flops, peak_rss_mib, print_table
except ImportError:  # pragma: no cover
    from _common import Timer, best_of, dgemm_flops, peak_rss_mib, print_table


# ---------------------------------------------------------------- data
def make_data(n_train, n_test, d, n_classes=2, seed=0):
    X, y = make_classification(
        n_samples=n_train + n_test,
        n_features=d,
        n_informative=min(d, max(10, d // 4)),
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=0.05,
        random_state=seed,
    )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def fit_logreg(X, y, C=1.0):
    est = LogisticRegression(C=C, tol=1e-8, max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


# ----------------------------------------------------- naive closed forms
def _augment(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


def naive_binary_prep(est, X, y, approximation):
    """Training side: gradients, Hessian, inverse, (newton) leverages and correction."""
    C = est.C
    d = X.shape[1]
    Xa = _augment(X)
    theta = np.r_[est.coef_.ravel(), est.intercept_]
    z = Xa @ theta
    p = expit(z)
    r = p - y
    s = p * (1 - p)
    w = np.full(X.shape[0], C)
    H = Xa.T @ (Xa * (w * s)[:, None])
    H[np.arange(d), np.arange(d)] += 1.0  # L2 on coef, intercept unpenalised
    Hinv = np.linalg.inv(H)
    if approximation == "first_order":
        G = Xa * r[:, None]  # per-sample gradients (n, p)
        W = G * w[:, None]
    else:
        M = np.einsum("ij,jk,ik->i", Xa, Hinv, Xa, optimize=True)  # leverages
        c = r / (1.0 - w * s * M)
        W = Xa * (w * c)[:, None]
    return theta, Hinv, W


def naive_binary_query(prep, Xt, yt, approximation):
    theta, Hinv, W = prep
    Xta = _augment(Xt)
    zt = Xta @ theta
    if approximation == "first_order":
        Gt = Xta * (expit(zt) - yt)[:, None]
        return Gt @ Hinv @ W.T
    D = Xta @ Hinv @ W.T  # output change of each test point for each removal
    return (
        np.logaddexp(0.0, zt[:, None] + D)
        - np.logaddexp(0.0, zt)[:, None]
        - yt[:, None] * D
    )


def naive_multi_prep(est, X, y, approximation):
    """Softmax model in the layout (class, [features, 1]); influence is layout-free."""
    C = est.C
    n, d = X.shape
    K = est.coef_.shape[0]
    q = d + 1
    Xa = _augment(X)
    Theta = np.hstack([est.coef_, est.intercept_[:, None]])  # (K, d+1)
    Z = Xa @ Theta.T
    P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
    Y = np.eye(K)[y]
    R = P - Y
    S = P[:, :, None] * (np.eye(K)[None] - P[:, None, :])  # diag(p) - p p^T
    w = np.full(n, C)
    H = np.zeros((K * q, K * q))
    for k in range(K):
        for m in range(K):
            H[k * q : (k + 1) * q, m * q : (m + 1) * q] = Xa.T @ (Xa * (w * S[:, k, m])[:, None])
    pen = np.tile(np.r_[np.ones(d), 0.0], K)
    H[np.diag_indices(K * q)] += pen
    Hinv = np.linalg.pinv(H, hermitian=True)  # intercept shift is a null direction
    if approximation == "first_order":
        G = (R[:, :, None] * Xa[:, None, :]).reshape(n, K * q)
        W = G * w[:, None]
    else:
        H4 = Hinv.reshape(K, q, K, q)
        M = np.einsum("ja,kalb,jb->jkl", Xa, H4, Xa, optimize=True)  # (n, K, K) leverages
        A = np.eye(K)[None] - w[:, None, None] * (S @ M)
        c = np.linalg.solve(A, R[:, :, None])[:, :, 0]
        W = ((w[:, None] * c)[:, :, None] * Xa[:, None, :]).reshape(n, K * q)
    return Theta, Hinv, W


def naive_multi_query(prep, Xt, yt, approximation):
    Theta, Hinv, W = prep
    K, q = Theta.shape
    Xta = _augment(Xt)
    Zt = Xta @ Theta.T
    rows = np.arange(Xt.shape[0])
    if approximation == "first_order":
        Pt = np.exp(Zt - logsumexp(Zt, axis=1, keepdims=True))
        Rt = Pt - np.eye(K)[yt]
        Gt = (Rt[:, :, None] * Xta[:, None, :]).reshape(Xt.shape[0], K * q)
        return Gt @ Hinv @ W.T
    V = (Hinv @ W.T).reshape(K, q, -1)  # parameter changes
    D = np.einsum("ia,kaj->ikj", Xta, V, optimize=True)  # (n_test, K, n_train)
    base = logsumexp(Zt, axis=1) - Zt[rows, yt]
    new = logsumexp(Zt[:, :, None] + D, axis=1) - (Zt[rows, yt][:, None] + D[rows, yt, :])
    return new - base[:, None]


# ------------------------------------------------------------- running
def warm_up():
    """Compile/load every numba kernel used below on a tiny problem (not timed)."""
    for n_classes in (2, 3):
        X, y, Xt, yt = make_data(60, 10, 5, n_classes=n_classes, seed=1)
        est = fit_logreg(X, y)
        for approx in ("first_order", "newton"):
            InfluenceFunctions(FrozenEstimator(est), approximation=approx).fit(X, y).transform(
                Xt, yt
            )
    Xs, ys, Xts, yts = make_sparse(80, 10, 30, density=0.2, seed=1)
    est = fit_logreg(Xs, ys)
    for solver in ("exact", "cg"):
        for approx in ("first_order", "newton"):
            InfluenceFunctions(
                FrozenEstimator(est), approximation=approx, solver=solver, tol=1e-8
            ).fit(Xs, ys).transform(Xts, yts)


def run_dense_case(name, n_train, n_test, d, n_classes, repeat, flops, profile=False):
    X, y, Xt, yt = make_data(n_train, n_test, d, n_classes=n_classes, seed=0)
    est = fit_logreg(X, y)
    K = 1 if n_classes == 2 else n_classes
    p = K * (d + 1)
    roofline = 2.0 * n_test * n_train * p / flops
    if n_classes == 2:
        nprep, nquery = naive_binary_prep, naive_binary_query
    else:
        nprep, nquery = naive_multi_prep, naive_multi_query
    rows = []
    for approx in ("first_order", "newton"):
        frozen = FrozenEstimator(est)

        def sk_fit():
            # refine=0: the plain one-step formula, which the naive code computes too
            return InfluenceFunctions(frozen, approximation=approx, refine=0).fit(X, y)

        # skinfluence and naive alternate within each repeat, so that both see the
        # same background load; the best of each timing is kept
        t_fit = t_tr = t_tr2 = t_prep = t_query = t_gemm = t_out = np.inf
        # the same-size product, timed beside the transform (the roofline on this load)
        rng = np.random.default_rng(0)
        Gr, Vr = rng.standard_normal((len(yt), p)), rng.standard_normal((p, len(y)))
        buf = np.empty((len(yt), len(y)))
        for _ in range(max(1, repeat)):
            M_sk = M_nv = None
            gc.collect()
            with Timer() as tm:
                inf = sk_fit()
            t_fit = min(t_fit, tm.seconds)
            with Timer() as tm:  # first call: includes training-side work done lazily
                M_sk = inf.transform(Xt, yt)
            t_tr = min(t_tr, tm.seconds)
            M_sk = None
            with Timer() as tm:  # repeated call: query-side work only
                M_sk = inf.transform(Xt, yt)
            t_tr2 = min(t_tr2, tm.seconds)
            with Timer() as tm:
                np.matmul(Gr, Vr, out=buf)
            t_gemm = min(t_gemm, tm.seconds)
            with Timer() as tm:  # into a preallocated output, as the product above
                inf.transform(Xt, yt, out=buf)
            t_out = min(t_out, tm.seconds)
            with Timer() as tm:
                prep = nprep(est, X, y, approx)
            t_prep = min(t_prep, tm.seconds)
            with Timer() as tm:
                M_nv = nquery(prep, Xt, yt, approx)
            t_query = min(t_query, tm.seconds)
            del prep
        if profile:
            profile_call(f"{name} {approx}: fit", sk_fit)
            profile_call(f"{name} {approx}: transform", lambda: inf.transform(Xt, yt))
        del inf
        diff = float(np.max(np.abs(M_sk - M_nv)))
        scale = float(np.max(np.abs(M_nv)))
        del M_sk, M_nv
        t_sk, t_nv = t_fit + t_tr, t_prep + t_query
        rows.append(
            {
                "case": name,
                "approx": approx,
                "shape": f"{n_test}x{n_train} p={p}",
                "sk_fit": t_fit,
                "sk_transform": t_tr,
                "sk_total": t_sk,
                "np_prep": t_prep,
                "np_query": t_query,
                "np_total": t_nv,
                "ratio_fit": t_fit / t_prep,
                "ratio_transform": t_tr / t_query,
                "ratio_total": t_sk / t_nv,
                "sk_transform_again": t_tr2,
                "roofline": roofline,
                "transform/roof": t_tr2 / roofline,
                "gemm_same": t_gemm,
                "transform_out": t_out,
                "out/gemm": t_out / t_gemm,
                "max_abs_diff": diff,  # refine=0, so this should be rounding only
                "rel_diff": diff / scale if scale > 0 else 0.0,
                "rss_mib": peak_rss_mib(),
            }
        )
    # the default newton adds exact refits of the most influential points (refine="auto")
    def fit_default():
        inf = InfluenceFunctions(FrozenEstimator(est), approximation="newton").fit(X, y)
        with Timer() as tm:
            inf.transform(Xt, yt)
        return inf, tm.seconds

    t_fit_ref, (inf, t_tr_ref) = best_of(fit_default, repeat)
    n_ref = inf.refined_indices_.size
    if n_ref == 0:  # the same computation as the row above
        return rows
    nv = rows[-1]
    rows.append(
        {
            "case": name,
            "approx": f"newton+refine({n_ref})",
            "shape": nv["shape"],
            "sk_fit": t_fit_ref - t_tr_ref,
            "sk_transform": t_tr_ref,
            "sk_total": t_fit_ref,
            "np_prep": nv["np_prep"],
            "np_query": nv["np_query"],
            "np_total": nv["np_total"],
            "ratio_fit": (t_fit_ref - t_tr_ref) / nv["np_prep"],
            "ratio_transform": t_tr_ref / nv["np_query"],
            "ratio_total": t_fit_ref / nv["np_total"],
            "roofline": roofline,
            "rss_mib": peak_rss_mib(),
        }
    )
    return rows


def make_sparse(n_train, n_test, d, density=0.01, seed=0):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X = sp.random(
        n, d, density=density, format="csr", random_state=seed,
        data_rvs=lambda k: rng.standard_normal(k),
    )
    beta = np.zeros(d)
    support = rng.choice(d, size=max(1, d // 20), replace=False)
    beta[support] = rng.standard_normal(support.size) * 3.0
    logits = np.asarray(X @ beta).ravel()
    y = (rng.random(n) < expit(logits)).astype(int)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def cg_test_side(est, X, y, Xt, yt, tol):
    """First-order influence with CG on the *query* side: ``n_test`` right-hand sides.

    ``s_i = H^{-1} g_i`` by batched CG (skinfluence's own solver and objective), then
    ``influence[i, j] = w_j r_j^T J_j s_i`` with one sparse product.  A sketch of how
    ``solver="cg"`` can beat a dense factorisation when ``n_test << n_train``.
    """
    obj = make_objective(est, X, y)
    solver = make_solver("cg", obj, tol=tol)
    Xtf, yte = obj.features(Xt), obj.encode_target(yt)
    S = solver.solve(obj.sample_gradients(Xtf, yte).T)  # (p, n_test)
    r, _ = obj.loss_derivatives(obj.outputs(obj.X), obj.y)
    JS = obj.jvp(obj.X, S)  # (n_train, K, n_test)
    return np.einsum("jkt,jk->tj", JS, obj.weights[:, None] * r), solver.info()


def run_sparse_case(n_train, n_test, d, density, C, repeat, approximations):
    X, y, Xt, yt = make_sparse(n_train, n_test, d, density=density, seed=0)
    est = fit_logreg(X, y, C=C)
    frozen = FrozenEstimator(est)
    rows = []
    for approx in approximations:
        out = {}
        for solver in ("exact", "cg"):
            def run():
                inf = InfluenceFunctions(
                    frozen, approximation=approx, solver=solver, tol=1e-8, refine=0
                )
                with Timer() as tf:
                    inf.fit(X, y)
                with Timer() as tt:
                    M = inf.transform(Xt, yt)
                return tf.seconds, tt.seconds, M, inf.solver_info_

            t, (tf, tt, M, info) = best_of(run, repeat)
            out[solver] = (tf, tt, t, M, info)
        M_ex, M_cg = out["exact"][3], out["cg"][3]
        pearson = float(np.corrcoef(M_ex.ravel(), M_cg.ravel())[0, 1])
        info = out["cg"][4]
        if approx == "first_order":
            t_side, (M_side, info_side) = best_of(
                lambda: cg_test_side(est, X, y, Xt, yt, 1e-8), repeat
            )
            side = {
                "approx": "first_order, CG on query side (sketch)",
                "cg_total": t_side,
                "cg/exact": t_side / out["exact"][2],
                "cg_iters": info_side.get("n_iter"),
                "pearson": float(np.corrcoef(M_ex.ravel(), M_side.ravel())[0, 1]),
                "max_abs_diff": float(np.max(np.abs(M_ex - M_side))),
            }
        rows.append(
            {
                "approx": approx,
                "shape": f"{n_test}x{n_train} d={d} nnz/row={X.nnz / n_train:.0f} C={C:g}",
                "exact_fit": out["exact"][0],
                "exact_transform": out["exact"][1],
                "exact_total": out["exact"][2],
                "cg_fit": out["cg"][0],
                "cg_transform": out["cg"][1],
                "cg_total": out["cg"][2],
                "cg/exact": out["cg"][2] / out["exact"][2],
                "cg_iters": info.get("n_iter"),
                "pearson": pearson,
                "max_abs_diff": float(np.max(np.abs(M_ex - M_cg))),
                "rss_mib": peak_rss_mib(),
            }
        )
        if approx == "first_order":
            side["shape"] = rows[-1]["shape"]
            rows.append(side)
    return rows


def numba_threads():
    import numba

    return numba.get_num_threads()


def profile_call(label, func, top=18):
    prof = cProfile.Profile()
    prof.enable()
    func()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    print(f"\n--- cProfile (tottime): {label} ---")
    print("\n".join(buf.getvalue().splitlines()[:top + 12]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 1 repeat")
    parser.add_argument("--profile", action="store_true", help="cProfile the large case")
    parser.add_argument("--skip", default="", help="comma-separated cases to skip (a,b,c,d)")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="BLAS and numba threads (default: all); 1 is steadier on a loaded machine",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        import numba
        from threadpoolctl import threadpool_limits

        numba.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args):
    skip = set(args.skip.split(",")) - {""}
    print(f"BLAS threads: {args.threads or 'all'}; numba threads: {numba_threads()}")

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("Warming up numba kernels (not timed) ...", flush=True)
    with Timer() as tw:
        warm_up()
    print(f"  warm-up {tw.seconds:.1f} s")
    flops = dgemm_flops(2000 if args.quick else 4000, repeat=3)
    size = 2000 if args.quick else 4000
    print(f"DGEMM ({size}x{size} @ {size}x{size}, best of 3): {flops / 1e9:.1f} GFLOP/s")

    q = args.quick
    cases = [
        # name, n_train, n_test, d, n_classes, repeat
        ("a", 10000 if q else 50000, 200 if q else 1000, 200, 2, 1 if q else 2),
        ("b", 5000, 200, 50, 2, 1 if q else 5),
        ("c", 2000 if q else 10000, 100 if q else 500, 64, 10, 1 if q else 2),
    ]
    rows = []
    for name, n_train, n_test, d, n_classes, repeat in cases:
        if name in skip:
            continue
        print(f"case ({name}) ...", flush=True)
        rows += run_dense_case(
            name, n_train, n_test, d, n_classes, repeat, flops,
            profile=args.profile and name == "a",
        )
    if rows:
        print_table(
            rows,
            ["case", "approx", "shape", "sk_fit", "sk_transform", "sk_total", "np_prep",
             "np_query", "np_total", "ratio_fit", "ratio_transform", "ratio_total"],
            title="Influence matrix, skinfluence vs naive numpy (seconds, best of k, the two "
                  "interleaved; sk_transform is the first call after fit, which includes any "
                  "training-side work done lazily; ratio = skinfluence / naive)",
        )
        print_table(
            rows,
            ["case", "approx", "roofline", "sk_transform_again", "transform/roof", "gemm_same",
             "transform_out", "out/gemm", "max_abs_diff",
             "rel_diff", "rss_mib"],
            title=f"DGEMM roofline (2 n_test n_train p / {flops / 1e9:.1f} GFLOP/s), "
                  "agreement with naive, peak RSS (MiB, cumulative)",
        )
        print(
            "Targets: (a) ratio_total <= 0.5 (goal 0.35); (b) ratio_total <= 2 after warm-up."
            " pyDVL 0.10 DirectInfluence: 2.6x naive on (a), 100x on (b)."
        )

    if "d" not in skip:
        print("case (d) ...", flush=True)
        n_train = 1000 if q else 2000
        srows = run_sparse_case(
            n_train, 100, 5000, 0.01, C=0.1, repeat=1,
            approximations=("first_order", "newton"),
        )
        print_table(
            srows,
            ["approx", "shape", "exact_fit", "exact_transform", "exact_total", "cg_fit",
             "cg_transform", "cg_total", "cg/exact", "cg_iters", "pearson", "max_abs_diff",
             "rss_mib"],
            title="Sparse CSR logistic regression: solver='cg' vs solver='exact' (seconds; "
                  "target Pearson >= 0.999 and cg/exact < 1)",
        )
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
