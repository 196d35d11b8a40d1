"""Summary table, article-claims check and plots from a results folder's per-epoch JSONL files.

Metrics (per schedule): final and best test accuracy; epochs and seconds (training plus evaluation,
compilation excluded) until the test accuracy first reaches 90% and 95% of the best *final* test accuracy
of all schedules in the folder; stability, the standard deviation of the test accuracy over the last 10% of
the epochs (at least the last 3, so that short runs have a number); median training images per second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

CLAIMS_TITLE = "## The article's claims against this run"


def load_records(out) -> dict[str, list[dict]]:
    runs = {}
    for f in sorted(Path(out).glob("*.jsonl")):
        recs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if recs:
            runs[recs[0]["schedule"]] = recs
    return runs


def stability(accs) -> float:
    k = max(3, math.ceil(0.1 * len(accs)))
    return float(np.std(np.asarray(accs[-k:], np.float64)))


def reach(recs, target):
    """(epochs, seconds) until test accuracy first reaches ``target``; (None, None) if it never does."""
    for r in recs:
        if r["test_acc"] >= target:
            return r["epoch"], r["elapsed"]
    return None, None


def metrics(runs: dict[str, list[dict]]) -> dict[str, dict]:
    best_final = max(r[-1]["test_acc"] for r in runs.values())
    out = {}
    for name, recs in runs.items():
        accs = [r["test_acc"] for r in recs]
        i = int(np.argmax(accs))
        m = {"epochs": len(recs), "final": accs[-1], "best": accs[i], "best_epoch": recs[i]["epoch"],
             "stability": stability(accs), "ips": float(np.median([r["images_per_sec"] for r in recs])),
             "seconds": recs[-1]["elapsed"], "final_train_loss": recs[-1]["train_loss"]}
        for frac in (0.9, 0.95):
            m[f"ep{int(frac * 100)}"], m[f"s{int(frac * 100)}"] = reach(recs, frac * best_final)
        out[name] = m
    return out, best_final


def _fmt(x, spec):
    return "never" if x is None else format(x, spec)


def table(ms: dict, best_final: float, planned: int | None = None) -> str:
    lines = [f"Thresholds: 90% and 95% of the best final test accuracy ({best_final:.2%}).", "",
             "| schedule | final test acc | best test acc (epoch) | epochs to 90% | s to 90% | epochs to 95% | "
             "s to 95% | stability (std, last 10%) | train img/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in ms.items():
        done = "" if planned is None or m["epochs"] >= planned else f" ({m['epochs']}/{planned} epochs)"
        lines.append(f"| {name}{done} | {m['final']:.2%} | {m['best']:.2%} ({m['best_epoch']}) | {_fmt(m['ep90'], 'd')} | "
                     f"{_fmt(m['s90'], '.0f')} | {_fmt(m['ep95'], 'd')} | {_fmt(m['s95'], '.0f')} | "
                     f"{m['stability']:.4f} | {m['ips']:.0f} |")
    return "\n".join(lines)


def claims(ms: dict) -> str:
    """The article's three claims, each judged on this run's numbers."""
    out = [CLAIMS_TITLE, ""]

    # 1. OneCycleLR converged 30% faster than StepLR.
    if "OneCycleLR" in ms and "StepLR" in ms:
        o, s = ms["OneCycleLR"], ms["StepLR"]
        parts, held = [], []
        for k in ("90", "95"):
            eo, es = o[f"ep{k}"], s[f"ep{k}"]
            if eo is None or es is None:
                parts.append(f"to {k}%: OneCycleLR {_fmt(eo, 'd')} epochs, StepLR {_fmt(es, 'd')}")
                held.append(eo is not None and es is None)
            else:
                diff = f"{1 - eo / es:.0%} fewer" if eo <= es else f"{eo / es - 1:.0%} more"
                parts.append(f"to {k}%: OneCycleLR {eo} epochs, StepLR {es} ({diff})")
                held.append(eo <= 0.7 * es)
        verdict = "held" if all(held) else ("held in part" if any(held) else "did not hold")
        out.append(f"1. *OneCycleLR converged 30% faster than StepLR*: **{verdict}** ({'; '.join(parts)}).")
    else:
        out.append("1. *OneCycleLR converged 30% faster than StepLR*: not measured (needs both schedules).")

    # 2. CosineAnnealingLR and ReduceLROnPlateau reached the best test accuracy (~92%).
    rank = sorted(ms, key=lambda n: -ms[n]["final"])
    pair = ["CosineAnnealingLR", "ReduceLROnPlateau"]
    if all(n in ms for n in pair):
        pos = {n: rank.index(n) + 1 for n in pair}
        verdict = "held" if set(rank[:2]) == set(pair) else ("held in part" if min(pos.values()) == 1 else
                                                             "did not hold")
        vals = ", ".join(f"{n} {ms[n]['final']:.2%} (rank {pos[n]} of {len(ms)})" for n in pair)
        out.append(f"2. *CosineAnnealingLR and ReduceLROnPlateau reached the best test accuracy (~92%)*: "
                   f"**{verdict}** for the ranking by final test accuracy: {vals}; the best was {rank[0]} "
                   f"({ms[rank[0]]['final']:.2%}). The ~92% level belongs to the article's 100-epoch ResNet-18 "
                   "setup and is only comparable with the `full` preset.")
    else:
        out.append("2. *CosineAnnealingLR and ReduceLROnPlateau reached the best test accuracy*: not measured "
                   "(needs both schedules).")

    # 3. ExponentialLR was the least stable.
    if "ExponentialLR" in ms:
        worst = max(ms, key=lambda n: ms[n]["stability"])
        verdict = "held" if worst == "ExponentialLR" else "did not hold"
        out.append(f"3. *ExponentialLR was the least stable*: **{verdict}**: its test-accuracy std over the last "
                   f"epochs was {ms['ExponentialLR']['stability']:.4f}; the least stable was {worst} "
                   f"({ms[worst]['stability']:.4f}).")
    else:
        out.append("3. *ExponentialLR was the least stable*: not measured (needs ExponentialLR).")
    out += ["", "The article's loss curves were simulated; every number here was measured."]
    return "\n".join(out)


def plot(runs: dict[str, list[dict]], path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, recs in runs.items():
        ep = [r["epoch"] for r in recs]
        axes[0].plot(ep, [r["lr"] for r in recs], marker=".", label=name)
        axes[1].plot(ep, [r["train_loss"] for r in recs], marker=".", label=name)
        axes[2].plot(ep, [r["test_acc"] for r in recs], marker=".", label=name)
    axes[0].set_yscale("log")
    for ax, t in zip(axes, ("learning rate (first step of the epoch)", "train loss", "test accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out, order=None) -> str:
    out = Path(out)
    runs = load_records(out)
    if not runs:
        raise FileNotFoundError(f"no per-epoch JSONL files in {str(out)!r}; run the benchmark first.")
    if order:
        runs = {n: runs[n] for n in order if n in runs} | {n: r for n, r in runs.items() if n not in order}
    info = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    ms, best_final = metrics(runs)
    head = [f"# CIFAR-10 schedule benchmark: preset `{info.get('preset', '?')}`", ""]
    if info:
        head.append(f"{info['date']}; {info['backend']} backend, {info['devices']} device(s) ({info['device_kind']}), "
                    f"{info['cpu_count']} CPU cores visible; data {info['data']}; model {info['model']} "
                    f"({info['params']:,} parameters, {info['compute_dtype']}); {info['epochs']} epochs of "
                    f"{info['train_images']:,} training images (batch {info['batch_size']}, "
                    f"{info['steps_per_epoch']} steps per epoch); test accuracy on {info['test_images']:,} test "
                    f"images. Compilation is excluded from the seconds.")
        head.append("")
        head.append("Schedules as run: " + "; ".join(f"{k}: `{v}`" for k, v in info.get("schedules", {}).items()))
        head.append("")
    text = "\n".join(head + [table(ms, best_final, info.get("epochs")), "", "![curves](curves.png)", "",
                             claims(ms), ""])
    (out / "summary.md").write_text(text)
    plot(runs, out / "curves.png")
    return text
