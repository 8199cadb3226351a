"""Analysis tools of mmgate: benchmark report, gate statistics, complexity,
speed and training curves. The CLIs live in ``tools/analysis/``.

- ``runs``: read MMEngine work directories (configs, scalar logs, tests).
- ``report``: one table of all runs, base-vs-Skip pairs, paper comparison.
- ``paper_results``: the published numbers, as data.
- ``gates``: mean sigmoid gate / inbound softmax weights per block.
- ``complexity``: parameters and FLOPs (MMEngine's FlopAnalyzer).
- ``speed``: time and peak memory of Skip vs base, interleaved.
- ``curves``: loss and metric curves.

Plots use matplotlib on the Agg backend, imported only when drawing.
"""
from .paper_results import PAPER_COMPLEXITY, PAPER_RESULTS, paper_result
from .runs import RunLog, find_runs, load_run

__all__ = [
    'PAPER_COMPLEXITY', 'PAPER_RESULTS', 'paper_result', 'RunLog',
    'find_runs', 'load_run'
]
