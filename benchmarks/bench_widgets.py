"""Redraw time of the kernel explorer (notebook 01's sliders).

    python benchmarks/bench_widgets.py [--repeats 10]

Prints the seconds per redraw (physics + one canvas draw, what a slider release costs) of
:class:`qpi_utils.widgets.Explorer`, which replaces the panels' data, against a reference
measured in the same run: building the figure afresh for every state, as the explorer used to.
"""

from __future__ import annotations

import argparse
import itertools
import time

from qpi_utils.plots import pyplot
from qpi_utils.widgets import Explorer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    plt = pyplot()
    states = itertools.cycle([dict(symmetry=s, frequency=f) for s in (0, 2, 3, 4, 6) for f in (0.08, 0.12, 0.2)])
    explorer = Explorer()
    explorer.fig.canvas.draw()

    def update():
        explorer.update(**next(states))
        explorer.fig.canvas.draw()

    def rebuild():  # the reference: a new figure per state
        fig = Explorer(**next(states)).fig
        fig.canvas.draw()
        plt.close(fig)

    rates = {}
    for name, fn in (("update", update), ("rebuild", rebuild)):
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        rates[name] = (time.perf_counter() - t0) / args.repeats
    print(f"explorer redraw, data replaced : {rates['update']:.3f} s")
    print(f"reference, figure rebuilt      : {rates['rebuild']:.3f} s   ratio {rates['rebuild'] / rates['update']:.2f}x")


if __name__ == "__main__":
    main()
