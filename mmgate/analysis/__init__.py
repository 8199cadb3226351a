"""Analysis tools of mmgate: benchmark report, gate statistics, complexity,
speed and training curves. The CLIs live in ``tools/analysis/``.

- ``runs``: read MMEngine work directories (configs, scalar logs, tests).
- ``report``: the benchmark report (``build_report`` / ``write_report``):
  one table of all runs, base-vs-gated pairs, paper comparison, seeded
  runs grouped and compared seed by seed. Its parts:

  - ``naming``: a backbone's name, trunk and structure, from its built
    class;
  - ``setting``: task, metrics, dataset, schedule and method of a dumped
    config;
  - ``summary``: one run's final metrics, status and paper values;
  - ``pairing``: base-vs-gated pairs, seeded groups, their paired tests;
  - ``render`` / ``tables``: Markdown and the pairs' bar chart / CSV.
- ``stats``: mean, standard deviation, Student-t intervals, paired t-test.
- ``metafiles``: the model index (``model-index.yml`` and the OpenMMLab
  metafiles of the config families): published numbers, baselines.
- ``gates``: mean sigmoid gate / inbound softmax weights per block.
- ``complexity``: parameters and FLOPs (MMEngine's FlopAnalyzer).
- ``speed``: time and peak memory of Skip vs base, interleaved.
- ``curves``: loss and metric curves.

Plots use matplotlib on the Agg backend, imported only when drawing.
"""
from .metafiles import (MetaModel, ModelIndex, load_model_index,
                        model_index_path, paper_complexity)
from .runs import RunLog, find_runs, load_run
from .stats import GroupStats, PairedTest, paired_t_test, summarize

__all__ = [
    'MetaModel', 'ModelIndex', 'load_model_index', 'model_index_path',
    'paper_complexity', 'RunLog', 'find_runs', 'load_run', 'GroupStats',
    'PairedTest', 'paired_t_test', 'summarize'
]
