"""Redraw time of the kernel explorer (notebook 01's sliders).

    python benchmarks/bench_widgets.py [--repeats 10]

Prints the seconds per redraw of :class:`qpi_utils.widgets.Explorer`, which replaces the panels'
data, against a reference measured in the same run: building the figure afresh for every state,
as the explorer used to. A redraw is what a user waits for after releasing a slider: the physics,
one canvas draw and the PNG encode that carries the figure to the browser (``display(fig)`` in the
widget's output area does exactly that encode, at the notebook's figure dpi).
"""

from __future__ import annotations

import argparse
import io
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
    from qpi_utils.notebook import NOTEBOOK_DPI

    plt.rcParams["figure.dpi"] = NOTEBOOK_DPI  # what the notebook's inline figures use
    explorer = Explorer()
    explorer.fig.canvas.draw()

    def encode(fig) -> int:  # the PNG the frontend receives (IPython's inline backend: savefig, tight box)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.tell()

    def update():
        explorer.update(**next(states))
        encode(explorer.fig)

    def rebuild():  # the reference: a new figure per state
        fig = Explorer(**next(states)).fig
        encode(fig)
        plt.close(fig)

    rates = {}
    for name, fn in (("update", update), ("rebuild", rebuild)):
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        rates[name] = (time.perf_counter() - t0) / args.repeats
    print(f"explorer redraw + PNG encode at {NOTEBOOK_DPI} dpi, data replaced : {rates['update']:.3f} s")
    print(f"reference, figure rebuilt (same encode)          : {rates['rebuild']:.3f} s   "
          f"ratio {rates['rebuild'] / rates['update']:.2f}x")


if __name__ == "__main__":
    main()
