"""Read MMEngine work directories: configs, scalar logs, test results.

The layout MMEngine (0.10) writes for ``work_dirs/<cfg>``::

    <cfg>.py                       # Runner.dump_config (train and test runs)
    epoch_12.pth / iter_80000.pth, last_checkpoint
    <timestamp>/<timestamp>.log    # text log
    <timestamp>/vis_data/scalars.json       # LocalVisBackend: JSON lines
    <timestamp>/vis_data/<timestamp>.json   # the same lines (LoggerHook)
    <timestamp>/vis_data/config.py          # Visualizer.add_config
    <timestamp>/<timestamp>.json   # tools/test.py: the test metrics, one dict
    <sub>/<timestamp>/<timestamp>.json      # a test run with --work-dir
                                            # inside the run (e.g. test/)

Train lines carry ``lr``, ``loss*``, ``time``, ``epoch``, ``iter``, ``step``;
validation lines carry the metrics and ``step`` (the epoch, or the iteration
when ``log_metric_by_epoch=False``). Each ``<timestamp>`` is one launch
(training, a resumed training, or a test); a run merges all of them.
"""
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

__all__ = ['RunLog', 'load_run', 'find_runs', 'is_train_line']

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
CKPT = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
# keys of a scalar line that are bookkeeping, not metrics
NON_METRIC_KEYS = frozenset(
    ('step', 'epoch', 'iter', 'data_time', 'time', 'memory', 'eta'))


@dataclass
class RunLog:
    """Everything read from one work directory.

    Attributes:
        work_dir (str): The directory.
        name (str): Its base name (the config name for ``tools/train.py``).
        config (Config, optional): The dumped config.
        config_path (str, optional): Where it was read from.
        train (list[dict]): Train scalar lines in step order.
        val (dict[int, dict]): Validation metrics by step (epoch or iter).
        tests (list[tuple[str, dict, str]]): ``(timestamp, metrics, folder)``
            of test launches (here or in a test-only sub-directory), oldest
            first.
        train_timestamps (list[str]): The launches that trained.
        checkpoints (dict[str, list[int]]): Saved ``epoch`` / ``iter``
            checkpoint numbers.
        timestamps (list[str]): The launches found.
        problems (list[str]): Files that could not be read, and why.
    """
    work_dir: str
    name: str
    config: Optional[Config] = None
    config_path: Optional[str] = None
    train: List[dict] = field(default_factory=list)
    val: Dict[int, dict] = field(default_factory=dict)
    tests: List[Tuple[str, dict, str]] = field(default_factory=list)
    train_timestamps: List[str] = field(default_factory=list)
    checkpoints: Dict[str, List[int]] = field(default_factory=dict)
    timestamps: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    @property
    def final_test(self) -> Optional[Tuple[str, dict, str]]:
        """The latest test launch not older than the last training launch
        (a test before it, such as an untrained baseline, is not the
        result; ``runner.train(); runner.test()`` shares one timestamp)."""
        last_train = max(self.train_timestamps, default='')
        after = [t for t in self.tests if t[0] >= last_train]
        return after[-1] if after else None

    @property
    def last_val(self) -> Optional[Tuple[int, dict]]:
        if not self.val:
            return None
        step = max(self.val)
        return step, self.val[step]


def is_train_line(line: dict) -> bool:
    """A train scalar line has a learning rate or a loss."""
    return 'lr' in line or 'base_lr' in line or any(
        k.startswith('loss') for k in line)


def metrics_of(line: dict) -> dict:
    """The metric entries of a validation / test line."""
    return {
        k: v
        for k, v in line.items() if k not in NON_METRIC_KEYS
        and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _read_json_lines(path: str, problems: List[str]) -> List[dict]:
    lines = []
    with open(path, encoding='utf-8') as f:
        for num, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            try:
                item = json.loads(text)
            except json.JSONDecodeError as e:
                # a run still writing leaves a truncated last line
                problems.append(f'{path}:{num}: not JSON ({e.msg})')
                continue
            if isinstance(item, dict):
                lines.append(item)
    return lines


def _read_config(work_dir: str, name: str, timestamps: List[str],
                 problems: List[str]) -> Tuple[Optional[Config], str]:
    candidates = [osp.join(work_dir, f'{name}.py')]
    candidates += sorted((osp.join(work_dir, f) for f in os.listdir(work_dir)
                          if f.endswith('.py') and f != f'{name}.py'),
                         key=osp.getmtime,
                         reverse=True)
    candidates += [
        osp.join(work_dir, ts, 'vis_data', 'config.py')
        for ts in reversed(timestamps)
    ]
    for path in candidates:
        if not osp.isfile(path):
            continue
        try:
            return Config.fromfile(path, import_custom_modules=False), path
        except Exception as e:  # a broken dump must not hide the run
            problems.append(f'{path}: config not readable ({e})')
    return None, None


def load_run(work_dir: str) -> RunLog:
    """Read one MMEngine work directory (see the module docstring)."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work directory {work_dir} does not exist')
    work_dir = osp.normpath(work_dir)
    run = RunLog(work_dir=work_dir, name=osp.basename(work_dir))
    run.timestamps = sorted(
        d for d in os.listdir(work_dir)
        if TIMESTAMP.match(d) and osp.isdir(osp.join(work_dir, d)))
    train_by_step: Dict[int, dict] = {}
    for ts in run.timestamps:
        ts_dir = osp.join(work_dir, ts)
        scalars = osp.join(ts_dir, 'vis_data', 'scalars.json')
        if not osp.isfile(scalars):
            # LoggerHook's copy, present when scalars.json is not
            scalars = osp.join(ts_dir, 'vis_data', f'{ts}.json')
        if osp.isfile(scalars):
            for line in _read_json_lines(scalars, run.problems):
                step = int(line.get('step', line.get('iter', 0)))
                if is_train_line(line):
                    # a resumed launch overrides the steps it repeats
                    train_by_step[step] = line
                    if ts not in run.train_timestamps:
                        run.train_timestamps.append(ts)
                else:
                    metrics = metrics_of(line)
                    if metrics:
                        run.val[step] = metrics
        test_json = osp.join(ts_dir, f'{ts}.json')
        if osp.isfile(test_json):
            try:
                with open(test_json, encoding='utf-8') as f:
                    result = json.load(f)
            except (json.JSONDecodeError, OSError) as e:
                run.problems.append(f'{test_json}: not readable ({e})')
            else:
                if isinstance(result, dict) and metrics_of(result):
                    run.tests.append((ts, metrics_of(result), work_dir))
    run.train = [train_by_step[s] for s in sorted(train_by_step)]
    for f in os.listdir(work_dir):
        m = CKPT.match(f)
        if m:
            run.checkpoints.setdefault(m[1], []).append(int(m[2]))
    for nums in run.checkpoints.values():
        nums.sort()
    run.config, run.config_path = _read_config(work_dir, run.name,
                                               run.timestamps, run.problems)
    return run


def _attach_test_runs(run: RunLog, max_depth: int = 2) -> List[RunLog]:
    """Merge the test-only runs below ``run`` into it; return the nested
    runs that trained (reported on their own)."""
    others = []

    def walk(path: str, depth: int) -> None:
        for entry in sorted(os.listdir(path)):
            sub = osp.join(path, entry)
            if not osp.isdir(sub) or TIMESTAMP.match(entry) or \
                    entry.startswith('.'):
                continue
            if _looks_like_run(sub):
                nested = load_run(sub)
                if nested.train or nested.checkpoints:
                    others.append(nested)
                else:
                    run.tests.extend(nested.tests)
                    run.problems.extend(nested.problems)
                continue
            if depth < max_depth:
                walk(sub, depth + 1)

    walk(run.work_dir, 1)
    run.tests.sort(key=lambda t: t[0])
    return others


def _looks_like_run(path: str) -> bool:
    try:
        entries = os.listdir(path)
    except OSError:
        return False
    return any((TIMESTAMP.match(e) and osp.isdir(osp.join(path, e)))
               or e.endswith('.py') or CKPT.match(e) for e in entries)


def find_runs(root: str, max_depth: int = 3) -> List[RunLog]:
    """All runs under ``root`` (``work_dirs``), sorted by path.

    A directory is a run when it holds a ``<timestamp>/`` launch, a dumped
    config or a checkpoint. Test-only runs inside a run are merged into it
    (``_attach_test_runs``); nested runs that trained are listed on their
    own. ``root`` itself may be a run.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'{root} is not a directory')
    found = []

    def walk(path: str, depth: int) -> None:
        if _looks_like_run(path):
            run = load_run(path)
            found.append(run)
            found.extend(_attach_test_runs(run))
            return
        if depth >= max_depth:
            return
        for entry in sorted(os.listdir(path)):
            sub = osp.join(path, entry)
            if osp.isdir(sub) and not entry.startswith('.'):
                walk(sub, depth + 1)

    walk(root, 0)
    return found
