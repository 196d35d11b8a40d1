"""Summary table, the article's claims and plots from a results folder's per-epoch JSONL files.

The metrics, intervals and verdict rule are described in the README ("Output and resume").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

CLAIMS_TITLE = "## The article's claims against this run"
#: claims are judged only for runs with at least this many test images and epochs
MIN_JUDGED = (1000, 5)


def t975(df: int) -> float:
    """Student's t 97.5% quantile with ``df`` degrees of freedom (scipy)."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def interval(values) -> tuple[float, float | None]:
    """``(mean, half-width of the 95% interval)`` over seeds; the half-width is None for one value."""
    v = np.asarray(values, np.float64)
    if v.size < 2:
        return float(v.mean()), None
    return float(v.mean()), t975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)


def load_runs(out) -> dict[str, dict[int, list[dict]]]:
    """``{schedule: {seed: records}}`` from every ``*.jsonl`` of a results folder."""
    runs: dict[str, dict[int, list[dict]]] = {}
    for f in sorted(Path(out).glob("*.jsonl")):
        recs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if recs:
            runs.setdefault(recs[0]["schedule"], {})[int(recs[0].get("seed", 0))] = recs
    return {k: dict(sorted(v.items())) for k, v in runs.items()}


def load_records(out) -> dict[str, list[dict]]:
    """``{schedule: records}`` of the lowest seed of each schedule (one curve per schedule)."""
    return {k: next(iter(v.values())) for k, v in load_runs(out).items()}


def _one(recs, best_final) -> dict:
    """One run's metrics; ``ep90``/``s90`` (and 95): epochs and seconds until the test accuracy first reaches
    that share of ``best_final`` (None if it never does)."""
    accs = [r["test_acc"] for r in recs]
    i = int(np.argmax(accs))
    m = {"epochs": len(recs), "final": accs[-1], "best": accs[i], "best_epoch": recs[i]["epoch"],
         "stability": float(np.std(np.asarray(accs[-max(3, math.ceil(0.1 * len(accs))):], np.float64))),
         "ips": float(np.median([r["images_per_sec"] for r in recs])),
         "seconds": recs[-1]["elapsed"], "final_train_loss": recs[-1]["train_loss"]}
    for pct in (90, 95):
        first = next((r for r in recs if r["test_acc"] >= pct / 100 * best_final), None)
        m[f"ep{pct}"], m[f"s{pct}"] = (None, None) if first is None else (first["epoch"], first["elapsed"])
    return m


def metrics(runs: dict) -> tuple[dict[str, dict], float]:
    """Per schedule (``runs``: its records or ``{seed: records}``): the mean over seeds of each metric of
    :func:`_one` (None where a seed never reached a threshold), ``per_seed`` and ``seeds``; and the best mean
    final accuracy, which sets the thresholds."""
    runs = {k: (v if isinstance(v, dict) else {0: v}) for k, v in runs.items()}
    best_final = max(float(np.mean([r[-1]["test_acc"] for r in by_seed.values()])) for by_seed in runs.values())
    out = {}
    for name, by_seed in runs.items():
        per = {seed: _one(recs, best_final) for seed, recs in by_seed.items()}
        m = {}
        for k in next(iter(per.values())):
            v, average = [p[k] for p in per.values()], np.median if k == "ips" else np.mean
            m[k] = v[0] if len(v) == 1 else None if None in v else float(average(v))
        out[name] = m | {"seeds": len(per), "per_seed": per}
    return out, best_final


def _fmt(x, spec):
    return "never" if x is None else format(x, spec)


def table(ms: dict, best_final: float, planned: int | None = None, test_images: int | None = None) -> str:
    seeds = max(m.get("seeds", 1) for m in ms.values())
    how = (f"mean over {seeds} seeds, 95% interval (Student's t)" if seeds > 1 else
           "one seed; 95% interval of the final accuracy from the test set alone (binomial)")
    lines = [f"Thresholds: 90% and 95% of the best final test accuracy ({best_final:.2%}). Accuracy: {how}.", "",
             "| schedule | seeds | final test acc (95%) | best test acc (epoch) | epochs to 90% | s to 90% | "
             "epochs to 95% | s to 95% | stability (std, last 10%) | train img/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in ms.items():
        done = "" if planned is None or m["epochs"] >= planned else f" ({m['epochs']:.0f}/{planned} epochs)"
        mean, hw = interval([p["final"] for p in m.get("per_seed", {0: m}).values()])
        if hw is None and test_images:
            hw = 1.96 * math.sqrt(mean * (1 - mean) / test_images)
        best_ep = _fmt(m["best_epoch"], ".0f" if m.get("seeds", 1) == 1 else ".1f")
        lines.append(f"| {name}{done} | {m.get('seeds', 1)} | {_pm(mean, hw, '.2%')} | {m['best']:.2%} ({best_ep}) | "
                     f"{_fmt(m['ep90'], '.3g')} | {_fmt(m['s90'], '.0f')} | {_fmt(m['ep95'], '.3g')} | "
                     f"{_fmt(m['s95'], '.0f')} | {m['stability']:.4f} | {m['ips']:.0f} |")
    return "\n".join(lines)


def _paired(ms: dict, fn, names=None) -> list[float]:
    """``fn({schedule: per-seed metrics})`` for every seed the schedules ``names`` (default all) share."""
    names = list(names or ms)
    common = set.intersection(*(set(ms[n]["per_seed"]) for n in names))
    return [fn({n: ms[n]["per_seed"][s] for n in names}) for s in sorted(common)]


def _pm(mean, hw, spec, scale=1):
    return format(mean * scale, spec) + ("" if hw is None else f" ± {format(hw * scale, spec.lstrip('+'))}")


def _verdict(values, threshold: float, held_if_above: bool, spec: str, scale=1, hw_one=None) -> tuple[str, str]:
    """``(verdict, 'mean ± half-width')``: 'held'/'did not hold' only when the 95% interval of ``values`` lies
    wholly on one side of ``threshold``."""
    mean, hw = interval(values)
    hw = hw_one if hw is None else hw
    if hw is None:
        verdict = "not resolved at this scale (one seed: no interval)"
    elif mean - hw > threshold or mean + hw < threshold:
        verdict = "held" if (mean - hw > threshold) == held_if_above else "did not hold"
    else:
        verdict = "not resolved at this scale"
    return verdict, _pm(mean, hw, spec, scale)


def claims(ms: dict, test_images: int | None = None, epochs: int | None = None) -> str:
    """The article's three claims, each judged on paired per-seed differences and their 95% interval."""
    out = [CLAIMS_TITLE, ""]
    if (test_images is not None and test_images < MIN_JUDGED[0]) or (epochs is not None and epochs < MIN_JUDGED[1]):
        out.append(f"Not judged: this run has {test_images} test images and {epochs} epochs, below the "
                   f"{MIN_JUDGED[0]:,} test images and {MIN_JUDGED[1]} epochs the claims need (e.g. the smoke "
                   "preset, near chance accuracy).")
        return "\n".join(out)
    E = epochs or max(m["epochs"] for m in ms.values())
    final, stab = {n: m["final"] for n, m in ms.items()}, {n: m["stability"] for n, m in ms.items()}

    # 1. OneCycleLR / StepLR epochs to 90% of the best final accuracy (never: epochs + 1), held below 0.7
    def ratio(p, k):
        eo, es = p["OneCycleLR"][f"ep{k}"], p["StepLR"][f"ep{k}"]
        return (E + 1 if eo is None else eo) / (E + 1 if es is None else es)

    head = "1. *OneCycleLR converged 30% faster than StepLR*"
    if "OneCycleLR" in final and "StepLR" in final:
        pair = ("OneCycleLR", "StepLR")
        v, r90 = _verdict(_paired(ms, lambda p: ratio(p, 90), pair), 0.7, False, ".2f")
        r95 = _pm(*interval(_paired(ms, lambda p: ratio(p, 95), pair)), ".2f")
        out.append(f"{head}: **{v}**: epochs to 90% of the best final accuracy, OneCycleLR / StepLR = {r90} "
                   f"(the claim needs <= 0.70; to 95%: {r95}).")
    else:
        out.append(f"{head}: not measured (needs both schedules).")

    # 2. the worse of CosineAnnealingLR and ReduceLROnPlateau minus the best other's final accuracy, held above 0
    pair = ["CosineAnnealingLR", "ReduceLROnPlateau"]
    head = "2. *CosineAnnealingLR and ReduceLROnPlateau reached the best test accuracy"
    if all(n in final for n in pair) and len(final) > 2:
        others = [n for n in final if n not in pair]
        hw_one = None
        if test_images:  # one seed: the difference of two accuracies on the test set (binomial, unpaired)
            a, b = min(final[n] for n in pair), max(final[n] for n in others)
            hw_one = 1.96 * math.sqrt((a * (1 - a) + b * (1 - b)) / test_images)
        diffs = _paired(ms, lambda p: min(p[n]["final"] for n in pair) - max(p[n]["final"] for n in others))
        v, gap = _verdict(diffs, 0.0, True, "+.2f", 100, hw_one)
        best = max(others, key=final.__getitem__)
        out.append(f"{head} (~92%)*: **{v}**: the worse of the two minus the best other schedule = {gap} points "
                   f"({', '.join(f'{n} {final[n]:.2%}' for n in pair)}; best other {best} {final[best]:.2%}). The "
                   "~92% level belongs to the article's 100-epoch ResNet-18 setup and is only comparable with the "
                   "`full` preset.")
    else:
        out.append(f"{head}*: not measured (needs both schedules and at least one other).")

    # 3. ExponentialLR's stability minus the largest of the others, held above 0
    head = "3. *ExponentialLR was the least stable*"
    if "ExponentialLR" in stab and len(stab) > 1:
        others = [n for n in stab if n != "ExponentialLR"]
        diffs = _paired(ms, lambda p: p["ExponentialLR"]["stability"] - max(p[n]["stability"] for n in others))
        v, excess = _verdict(diffs, 0.0, True, "+.4f")
        worst = max(stab, key=stab.__getitem__)
        out.append(f"{head}: **{v}**: its test-accuracy std over the last epochs minus the largest other = {excess} "
                   f"(ExponentialLR {stab['ExponentialLR']:.4f}; the least stable was {worst}, {stab[worst]:.4f}).")
    else:
        out.append(f"{head}: not measured (needs ExponentialLR and another).")
    out += ["", "Verdicts: 'held' / 'did not hold' only where the 95% interval of the per-seed difference lies "
            "wholly on one side of the claim's threshold; otherwise 'not resolved at this scale' with the "
            "effect size. The article's loss curves were simulated; every number here was measured."]
    return "\n".join(out)


def plot(runs: dict[str, list[dict]], path):
    """LR, train loss and test accuracy per epoch, one curve per schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("lr", "learning rate (first step of the epoch)"), ("train_loss", "train loss"),
              ("test_acc", "test accuracy"))
    for ax, (key, title) in zip(axes, panels):
        for name, recs in runs.items():
            ax.plot([r["epoch"] for r in recs], [r[key] for r in recs], marker=".", label=name)
        ax.set(xlabel="epoch", title=title)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out, order=None) -> str:
    """Write ``summary.md`` (returned) and ``curves.png`` into ``out``; schedules in ``order``, else run.json's."""
    out = Path(out)
    runs = load_runs(out)
    if not runs:
        raise FileNotFoundError(f"no per-epoch JSONL files in {str(out)!r}; run the benchmark first.")
    info = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    order = order or list(info.get("schedules", {}))
    runs = {n: runs[n] for n in order if n in runs} | {n: r for n, r in runs.items() if n not in order}
    ms, best_final = metrics(runs)
    head = [f"# CIFAR-10 schedule benchmark: preset `{info.get('preset', '?')}`", ""]
    if info:
        head.append(f"{info['date']}; {info['backend']} backend, {info['devices']} device(s) ({info['device_kind']}), "
                    f"{info['cpu_count']} CPU cores visible; data {info['data']}; model {info['model']} "
                    f"({info['params']:,} parameters, {info['compute_dtype']}); {info['epochs']} epochs of "
                    f"{info['train_images']:,} training images (batch {info['batch_size']}, "
                    f"{info['steps_per_epoch']} steps per epoch); test accuracy on {info['test_images']:,} test "
                    f"images; {info.get('seeds', 1)} seed(s). Compilation is excluded from the seconds.")
        head += ["", "Schedules as run: " + "; ".join(f"{k}: `{v}`" for k, v in info.get("schedules", {}).items()),
                 ""]
    text = "\n".join(head + [table(ms, best_final, info.get("epochs"), info.get("test_images")), "",
                             "![curves](curves.png)", "",
                             claims(ms, info.get("test_images"), info.get("epochs")), ""])
    (out / "summary.md").write_text(text)
    plot({k: next(iter(v.values())) for k, v in runs.items()}, out / "curves.png")
    return text
