#!/usr/bin/python3
"""Plots a study's CSV (psaq study --action=collect): strong scaling, weak scaling, accuracy.

    study_plot.py STUDY_CSV OUT_PNG

Panels (finished cells only; seeds averaged):
  strong scaling  wall seconds against ranks, one line per (model, method, bits, num_samples)
  weak scaling    wall seconds against ranks, one line per (model, method, bits, samples per
                  rank) that the grid holds at two or more rank counts
  accuracy        quantized top-1 (%) against num_samples, one line per (model, method, bits,
                  ranks); empty when the study does not evaluate
Needs Debian's python3-matplotlib (launch/setup.sh installs it).
"""
import csv
import statistics
import sys
from collections import defaultdict


def mean_by(rows, key, x, y):
    """{key(row): [(x, mean y over the rows with that x), ...] sorted by x}."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r[y] != "":
            groups[key(r)][x(r)].append(float(r[y]))
    return {k: sorted((xv, statistics.mean(ys)) for xv, ys in g.items()) for k, g in groups.items()}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: study_plot.py STUDY_CSV OUT_PNG")
    with open(sys.argv[1], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "finished"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    label = lambda r: f"{r['model']} {r['method']} w{r['w_bits']}a{r['a_bits']}"

    ax = axes[0]
    for k, pts in sorted(mean_by(rows, lambda r: f"{label(r)} n={r['num_samples']}",
                                 lambda r: int(r["ranks"]), "wall_seconds").items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
    ax.set(title="strong scaling (fixed samples)", xlabel="ranks", ylabel="wall seconds")

    ax = axes[1]
    per_rank = lambda r: int(r["num_samples"]) / int(r["ranks"])
    for k, pts in sorted(mean_by(rows, lambda r: f"{label(r)} {per_rank(r):g}/rank",
                                 lambda r: int(r["ranks"]), "wall_seconds").items()):
        if len(pts) >= 2:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=k)
    ax.set(title="weak scaling (fixed samples per rank)", xlabel="ranks", ylabel="wall seconds")

    ax = axes[2]
    for k, pts in sorted(mean_by(rows, lambda r: f"{label(r)} r={r['ranks']}",
                                 lambda r: int(r["num_samples"]), "top1").items()):
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=k)
    ax.set(title="accuracy vs samples", xlabel="num_samples", ylabel="quantized top-1 (%)")

    # Ticks at the grid's own values, printed plainly (log axes would print 2x10^0).
    ranks = sorted({int(r["ranks"]) for r in rows})
    samples = sorted({int(r["num_samples"]) for r in rows})
    for ax, ticks in ((axes[0], ranks), (axes[1], ranks), (axes[2], samples)):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no finished cells for this panel", ha="center",
                    transform=ax.transAxes)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{sys.argv[1]}: {len(rows)} finished cells")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
