"""Plot resident memory per server process across the runs of one or more soaks (bench/load.py).

    python -m bench.soak_plot bench/results/load-vm-soak-memory.json

The input holds ``{"soaks": {label: load report, ...}}``; the PNG is written beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROLES = {"ocr-engine": "engine worker", "deepseek-ocr": "API worker", "serve": "bentoml serve (arbiter)"}


def plot(soaks: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ROLES), figsize=(13, 4), sharex=True)
    for axis, (role, title) in zip(axes, ROLES.items()):
        for label, report in soaks.items():
            start = report["process_rss_mb_before"]
            points = [start, *(run["process_rss_mb_after"] for run in report["runs"])]
            line, = axis.plot(range(len(points)), [p.get(role, {}).get("rss", 0) for p in points], marker="o",
                              label=f"{label}: right after each run")
            if all("process_rss_mb_settled" in run for run in report["runs"]):
                rested = [start, *(run["process_rss_mb_settled"] for run in report["runs"])]
                axis.plot(range(len(rested)), [p.get(role, {}).get("rss", 0) for p in rested], marker="s",
                          linestyle="--", color=line.get_color(), label=f"{label}: at rest")
        axis.set_title(title)
        axis.set_xlabel("runs completed")
        axis.set_ylabel("RSS (MB)")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    first = next(iter(soaks.values()))
    fig.suptitle(f"Soak: {len(first['runs'])} runs x {first['runs'][0]['requests']} requests at "
                 f"{first['runs'][0]['concurrency']} concurrency, {first['engine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    args = parser.parse_args()
    plot(json.loads(args.report.read_text())["soaks"], args.report.with_suffix(".png"))
    print(f"wrote {args.report.with_suffix('.png')}")


if __name__ == "__main__":
    main()
