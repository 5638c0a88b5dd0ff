"""``skinfluence demo``: a one-minute tour on scikit-learn's bundled handwritten digits."""

import sys
import time
from types import SimpleNamespace

import numpy as np

from ._commands import make_model, rank_label_issues
from ._render import format_table

__all__ = ["run_demo", "cmd_demo"]

_SHADES = " .:-=+*#%@"


def _digit_art(image):
    """An 8x8 digit (values 0..16) as 8 lines of 16 characters."""
    image = np.asarray(image, dtype=float).reshape(8, 8)
    idx = np.clip((image / 16.0 * (len(_SHADES) - 1)).round().astype(int), 0, len(_SHADES) - 1)
    return ["".join(_SHADES[v] * 2 for v in line) for line in idx]


def _side_by_side(blocks, captions, gap=3):
    """Text blocks next to each other under their captions, indented like the report."""
    width = max(len(line) for block in blocks for line in block)
    width = max(width, max(len(c) for c in captions))
    lines = [(" " * gap).join(c.ljust(width) for c in captions)]
    for k in range(len(blocks[0])):
        lines.append((" " * gap).join(block[k].ljust(width) for block in blocks))
    return "\n".join("   " + line.rstrip() for line in lines)


class _Stages:
    """Stage counter with a tqdm bar when tqdm is installed, plain lines otherwise."""

    def __init__(self, names, quiet):
        self.names = names
        self.quiet = quiet
        self.bar = None
        self.t0 = time.perf_counter()
        if not quiet:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=len(names), desc="demo", unit="step", file=sys.stderr,
                                leave=False)
            except ImportError:
                pass

    def start(self, i):
        if self.quiet:
            return
        text = f"[{i + 1}/{len(self.names)}] {self.names[i]} ..."
        if self.bar is not None:
            self.bar.set_description(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def done(self):
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0


def run_demo(quiet=False, random_state=0, noise_rate=0.1):
    """End-to-end tour: flipped labels found, a prediction explained, rows valued.

    Uses scikit-learn's bundled handwritten digits (no download): 10% of the
    training labels are flipped, then

    1. :class:`~skinfluence.InfluenceCleaner` ranks the rows by label suspicion;
    2. :class:`~skinfluence.InfluenceFunctions` explains one test prediction by
       its most helpful and most harmful training digits;
    3. :class:`~skinfluence.KNNShapley` values every training row.

    The computations run first, under a progress bar; the report follows.
    """
    r = _compute(quiet, random_state, noise_rate)
    n, n_flip = len(r.y_noisy), int(r.flipped.sum())
    _say(f"skinfluence demo: {n} handwritten digits (8x8 pixels, bundled with scikit-learn);\n"
         f"{n_flip} of their labels ({noise_rate:.0%}) were flipped at random.")
    _report_flips(r)
    _report_explanation(r)
    _report_values(r)
    _say(f"\ndone in {r.seconds:.1f} s.  Next: `skinfluence label-issues YOUR.csv --target "
         "COLUMN`, or `skinfluence --help`.")
    return 0


def _compute(quiet, random_state, noise_rate):
    """Every result of the demo, computed under the progress bar."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import skinfluence
    from skinfluence.datasets import make_noisy_labels

    stages = _Stages(["finding flipped labels", "explaining a prediction", "valuing rows"],
                     quiet)
    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test, img_train, img_test = train_test_split(
        X, digits.target, digits.images, test_size=300, random_state=random_state,
        stratify=digits.target,
    )
    y_noisy, flipped = make_noisy_labels(y_train, noise_rate, random_state=random_state)
    r = SimpleNamespace(y_train=y_train, y_test=y_test, img_train=img_train,
                        img_test=img_test, y_noisy=y_noisy, flipped=flipped)

    stages.start(0)
    r.scores, r.issues, r.suggested = rank_label_issues(
        X_train, y_noisy, make_model("logistic"), verbose=0
    )
    stages.done()

    stages.start(1)
    inf = skinfluence.InfluenceFunctions(make_model("logistic")).fit(X_train, y_noisy)
    r.pred = inf.predict(X_test)
    wrong = np.flatnonzero(r.pred != y_test)
    r.i = i = int(wrong[0]) if len(wrong) else 0
    r.expl = inf.explain(X_test[i : i + 1], r.pred[i : i + 1], k=3)
    stages.done()

    stages.start(2)
    r.values = np.asarray(
        skinfluence.KNNShapley(n_neighbors=5)
        .fit(X_train, y_noisy, X_val=X_test, y_val=y_test)
        .values_
    )
    stages.done()
    r.seconds = stages.close()
    return r


def _say(text=""):
    print(text, flush=True)


def _report_flips(r):
    n, n_flip, flipped = len(r.y_noisy), int(r.flipped.sum()), r.flipped
    _say("\n1. Finding the flipped labels (InfluenceCleaner + LogisticRegression, one fit)")
    found = flipped[np.argsort(-r.scores, kind="stable")]
    for frac in (0.05, 0.1, 0.2):
        m = int(round(frac * n))
        _say(f"   checking the {m:4d} most suspicious rows ({frac:3.0%}) finds "
             f"{found[:m].sum() / n_flip:6.1%} of the flips (random order: {frac:.0%})")
    n_issue = int(r.issues.sum())
    if n_issue:
        hit = r.issues & flipped
        fixed = np.mean(r.suggested[hit] == r.y_train[hit]) if hit.any() else float("nan")
        _say(f"   {n_issue} rows flagged, {flipped[r.issues].mean():.0%} of them really "
             f"flipped; the suggested label is the true one for {fixed:.0%} of those.")


def _report_explanation(r):
    i, y_noisy, flipped = r.i, r.y_noisy, r.flipped
    _say(f"\n2. Why does the model (trained on the noisy labels) call test digit #{i} a "
         f"{r.pred[i]}? Its true label is {r.y_test[i]}.")
    h_idx = [int(j) for j in np.asarray(r.expl["helpful_indices"])[0]]
    b_idx = [int(j) for j in np.asarray(r.expl["harmful_indices"])[0]]
    blank = [" " * 16] * 8
    _say(_side_by_side(
        [_digit_art(r.img_test[i])] + [_digit_art(r.img_train[j]) for j in h_idx],
        [f"test #{i}"] + [f"+ #{j} y={y_noisy[j]}{'!' if flipped[j] else ''}" for j in h_idx],
    ))
    _say(_side_by_side(
        [blank] + [_digit_art(r.img_train[j]) for j in b_idx],
        [""] + [f"- #{j} y={y_noisy[j]}{'!' if flipped[j] else ''}" for j in b_idx],
    ))
    _say("   + most helpful training rows (removing one would raise the loss of this "
         "prediction most)\n   - most harmful ones;  ! = a flipped label.")
    n_bad = sum(bool(flipped[j]) for j in h_idx)
    if n_bad:
        _say(f"   {n_bad} of the {len(h_idx)} rows behind this mistake carry flipped labels: "
             "the model learnt it from them.")


def _report_values(r):
    n, n_flip, flipped, values = len(r.y_noisy), int(r.flipped.sum()), r.flipped, r.values
    _say("\n3. Data values (KNNShapley: exact Shapley values, validated on 300 test digits)")
    low = np.argsort(values, kind="stable")
    _say(f"   of the {n_flip} least valuable rows, {flipped[low[:n_flip]].mean():.0%} are "
         f"flipped labels (random: {n_flip / n:.0%}).  The five least valuable:")
    rows = [[str(int(j)), values[j], str(r.y_noisy[j]), str(r.y_train[j]),
             "yes" if flipped[j] else ""] for j in low[:5]]
    _say("   " + format_table(["row", "value", "given", "true", "flipped"], rows)
         .replace("\n", "\n   "))


def cmd_demo(args):
    from threadpoolctl import threadpool_limits

    # The demo's problems are small: one BLAS thread is fastest and cannot
    # oversubscribe a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return run_demo(quiet=args.quiet, random_state=args.random_state)
