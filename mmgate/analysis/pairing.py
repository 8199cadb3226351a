"""Base-vs-gated pairs of runs and seeded groups of runs.

A gated run is paired with the run of its metafile model's
``Metadata.Baseline`` (same task), else with a plain run of the same task,
method, dataset, schedule and backbone trunk (``naming.py``: the parameters
outside the Gate Modules; SkipResNet-50 and ResNet-50 of one library share
it). A seeded run pairs with the base run of its seed when there is one.

Seeded runs (``randomness.seed`` in the dumped config, e.g. from
``tools/finetune.py --seeds K``) whose configs differ in nothing else (the
work directory, checkpoint and launcher aside) form a :class:`Group`: its
mean, sample standard deviation and Student-t 95 % interval per metric
(``stats.py``). A gated group is paired with the plain group whose config
differs only in the backbone: the paired t-test of the per-seed differences
gated - base.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

from .metafiles import ModelIndex
from .naming import BackboneInfo
from .setting import TASK_METRICS, TASK_ORDER
from .stats import GroupStats, PairedTest, paired_t_test, summarize
from .summary import RunSummary

__all__ = [
    'Pair', 'Group', 'GroupPair', 'pair_runs', 'group_runs', 'pair_groups',
    'group_comparisons'
]


@dataclass
class Pair:
    """A Skip run and the base run of the same setting.

    ``paired_by`` is ``'metafile'`` (the base run is of the Skip model's
    ``Metadata.Baseline``) or ``'config'`` (same task, method, dataset,
    schedule and backbone trunk, read from the configs)."""
    base: RunSummary
    skip: RunSummary
    paired_by: str = 'config'

    def gain(self, metric: str) -> Optional[float]:
        if metric in self.base.metrics and metric in self.skip.metrics:
            return self.skip.metrics[metric] - self.base.metrics[metric]
        return None

    def paper_gain(self, metric: str) -> Optional[float]:
        if metric in self.base.paper and metric in self.skip.paper:
            return self.skip.paper[metric] - self.base.paper[metric]
        return None

    @property
    def label(self) -> str:
        return f'{self.skip.backbone.label} vs {self.base.backbone.label}'


def _choose(s: RunSummary, candidates: List[RunSummary],
            what: str) -> RunSummary:
    """The first of ``candidates`` (complete runs first), noted on ``s``
    when there are several."""
    ranked = sorted(candidates, key=lambda b: not b.complete)
    if len(ranked) > 1:
        s.notes.append(f'{len(ranked)} runs of {what}; paired with '
                       f'{ranked[0].config}')
    return ranked[0]


def pair_runs(summaries: Sequence[RunSummary],
              index: Optional[ModelIndex] = None) -> List[Pair]:
    """Match each gated run with a base run.

    A run of a metafile model with a ``Metadata.Baseline`` is paired with a
    run of that baseline model (same task). Other gated runs, and those
    whose baseline has no run, are paired with a base run of the same task,
    method, dataset, schedule and backbone trunk (``naming.py``). Several
    candidates: complete runs first, noted."""
    pairs = []
    bases = [s for s in summaries if not s.backbone.skip]

    def same_seed(s, candidates):
        # a seeded run pairs with the base run of its seed, when there is one
        if s.seed is None:
            return candidates
        return [b for b in candidates if b.seed == s.seed] or candidates

    for s in summaries:
        if not s.backbone.skip:
            continue
        meta = index.get(s.model) if index is not None else None
        baseline = meta.baseline if meta is not None else None
        if baseline:
            runs = same_seed(
                s,
                [b for b in bases if b.model == baseline and b.task == s.task])
            if runs:
                pairs.append(Pair(_choose(s, runs, baseline), s, 'metafile'))
                continue
        candidates = same_seed(s,
                               [b for b in bases if b.pair_key == s.pair_key])
        if not candidates:
            continue  # listed among the runs without a partner
        chosen = _choose(s, candidates, 'the same setting')
        if baseline:
            s.notes.append(f'no run of its baseline {baseline}; paired by '
                           f'config with {chosen.config}')
        pairs.append(Pair(chosen, s, 'config'))
    return pairs


@dataclass
class Group:
    """Runs of one config that differ only in their seed.

    Attributes:
        label (str): The config's name.
        runs (list[RunSummary]): The runs, by seed.
        notes (list[str]): Runs left out of the statistics, and why.
    """
    label: str
    runs: List[RunSummary]
    notes: List[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.runs[0].task

    @property
    def backbone(self) -> BackboneInfo:
        return self.runs[0].backbone

    @property
    def seeds(self) -> List[int]:
        return [s.seed for s in self.runs]

    def values(self, metric: str) -> Dict[int, float]:
        """``{seed: value}`` of the complete runs that have ``metric``."""
        return {
            s.seed: s.metrics[metric]
            for s in self.runs if s.complete and metric in s.metrics
        }

    def stats(self, metric: str) -> Optional[GroupStats]:
        values = self.values(metric)
        return summarize(list(values.values())) if values else None


@dataclass
class GroupPair:
    """A gated group and the base group of the same setting, compared
    seed by seed."""
    base: Group
    gated: Group

    @property
    def label(self) -> str:
        return f'{self.gated.backbone.label} vs {self.base.backbone.label}'

    def seeds(self, metric: str) -> List[int]:
        """The seeds both groups have ``metric`` for."""
        gated, base = self.gated.values(metric), self.base.values(metric)
        return sorted(set(gated) & set(base))

    def test(self, metric: str) -> Optional[PairedTest]:
        """Paired t-test of gated - base over the common seeds."""
        seeds = self.seeds(metric)
        if not seeds:
            return None
        gated, base = self.gated.values(metric), self.base.values(metric)
        return paired_t_test([gated[s] for s in seeds],
                             [base[s] for s in seeds])


def group_runs(summaries: Sequence[RunSummary]) -> List[Group]:
    """Group the seeded runs whose configs differ only in the seed.

    A seed run twice in one group counts once (the complete run, else the
    first); the other is noted."""
    by_key: Dict[str, List[RunSummary]] = {}
    for s in summaries:
        if s.seed is not None and s.group_key is not None:
            by_key.setdefault(s.group_key, []).append(s)
    groups = []
    for runs in by_key.values():
        runs = sorted(runs, key=lambda s: (s.seed, not s.complete, s.config))
        kept, notes = [], []
        for s in runs:
            if kept and kept[-1].seed == s.seed:
                notes.append(f'seed {s.seed} also in {s.config}: '
                             f'{kept[-1].config} used')
                continue
            kept.append(s)
        for s in kept:
            if not s.complete:
                notes.append(f'seed {s.seed} ({s.config}): {s.status}, left '
                             'out')
        groups.append(Group(runs[0].config_name, kept, notes))
    labels = [g.label for g in groups]
    for g in groups:
        if labels.count(g.label) > 1:
            # one config file name, different contents (an edited config)
            g.label += f' ({g.runs[0].group_key[:7]})'
    groups.sort(
        key=lambda g: (TASK_ORDER.get(g.task, len(TASK_ORDER)), g.label))
    return groups


def pair_groups(groups: Sequence[Group]) -> List[GroupPair]:
    """Pair each gated group with the plain group whose config differs
    from its own only in the backbone (``tools/finetune.py --compare
    base`` writes such twins; mmgate's Skip configs and their baselines
    are such pairs too). Several: the same backbone trunk first, then the
    most shared seeds. A gated group without one is noted."""
    out = []
    for g in groups:
        if not g.backbone.skip:
            continue
        key = g.runs[0].setting_key
        candidates = [
            b for b in groups
            if not b.backbone.skip and b.runs[0].setting_key == key
        ]
        if not candidates:
            g.notes.append('no group of plain runs with the same config but '
                           'the backbone: not compared seed by seed')
            continue
        best = max(
            candidates,
            key=lambda b: (b.backbone.family_key == g.backbone.family_key,
                           len(set(b.seeds) & set(g.seeds))))
        out.append(GroupPair(best, g))
    return out


def group_comparisons(group_pairs: Sequence[GroupPair]) -> Iterator[tuple]:
    """``(pair, metric, test, seeds, gated mean, base mean)`` of every
    gated-vs-base group comparison that has a paired test, over the seeds
    both groups ran."""
    for gp in group_pairs:
        for m in TASK_METRICS.get(gp.gated.task, ()):
            test = gp.test(m.name)
            if test is None:
                continue
            seeds = gp.seeds(m.name)
            gated, base = gp.gated.values(m.name), gp.base.values(m.name)
            mean_gated = sum(gated[s] for s in seeds) / len(seeds)
            mean_base = sum(base[s] for s in seeds) / len(seeds)
            yield gp, m, test, seeds, mean_gated, mean_base
