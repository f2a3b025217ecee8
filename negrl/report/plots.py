"""Figures: accuracy by level per method (bars with CI error bars and per-seed dots), training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from negrl.provenance import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def plot_accuracy_by_level(summary: pd.DataFrame, by_seed: pd.DataFrame, path: str | Path, title: str) -> None:
    methods = list(summary["method"].unique())
    levels = list(summary["level"].unique())
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(levels), 4.2))
    colors = plt.get_cmap("tab10")
    x = np.arange(len(levels))
    for k, method in enumerate(methods):
        part = summary[summary["method"] == method].set_index("level").loc[levels]
        offset = x - 0.4 + width * (k + 0.5)
        errors = np.vstack([part["accuracy"] - part["ci_low"], part["ci_high"] - part["accuracy"]])
        n_seeds = int(part["n_seeds"].iloc[0])
        ax.bar(offset, part["accuracy"], width * 0.92, yerr=errors, capsize=3, color=colors(k), alpha=0.85,
               label=f"{method} ({n_seeds} seed{'s' if n_seeds > 1 else ''})", error_kw={"elinewidth": 1})
        seeds = by_seed[(by_seed["method"] == method) & by_seed["seed"].notna()]
        for j, level in enumerate(levels):
            values = seeds.loc[seeds["level"] == level, "accuracy"]
            ax.scatter(np.full(len(values), offset[j]), values, s=10, color="black", zorder=3)
    ax.set_xticks(x, [f"Level {lv}" if lv != "all" else "All" for lv in levels])
    ax.set_ylabel("accuracy (mean over samples)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, ncol=min(4, len(methods)))
    ax.text(1.0, -0.12, "bars: mean; error bars: 95% CI (problems x seeds); dots: single seeds",
            transform=ax.transAxes, ha="right", fontsize=7, color="gray")
    _save(fig, path)


def plot_training_curves(logs: dict[str, list[pd.DataFrame]], path: str | Path, title: str) -> None:
    """Reward and fraction of all-wrong groups over rollout steps; mean over seeds with min-max band."""
    keys = [("reward/mean", "training reward (mean)"), ("batch/frac_all_wrong_groups", "fraction of all-wrong groups")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.4))
    colors = plt.get_cmap("tab10")
    for k, (method, frames) in enumerate(sorted(logs.items())):
        for ax, (key, label) in zip(axes, keys):
            series = [f.set_index("step/rollout")[key] for f in frames if key in f]
            if not series:
                continue
            table = pd.concat(series, axis=1)
            smooth = table.rolling(5, min_periods=1).mean()
            ax.plot(smooth.index, smooth.mean(axis=1), color=colors(k + 1), label=method)
            ax.fill_between(smooth.index, smooth.min(axis=1), smooth.max(axis=1), color=colors(k + 1), alpha=0.2)
            ax.set_xlabel("rollout step")
            ax.set_title(label, fontsize=10)
            ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)
