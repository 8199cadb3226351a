"""mmgate's model index: the OpenMMLab metafiles, read as data.

``model-index.yml`` (at the repository root; ``mmgate/.mim/`` in an
installed package) imports one ``configs/<family>/metafile.yml`` per config
family, in the format of OpenMMLab's model zoos (``Collections`` with
``Paper`` / ``Code`` / ``README``; ``Models`` with ``Name``, ``In
Collection``, ``Config``, ``Metadata``, ``Results`` and ``Weights``), which
openmim reads too (``mim search mmgate``). A model's ``Name`` is its config
file name without ``.py``. ``Results`` hold the numbers the authors
published (Takeda, MIRU 2022 for the Skip families, MIRU 2020 for the Dense
one); ``Metadata`` the usual keys (``Training Data``, ``Batch Size``,
``Epochs`` / ``Iterations``, ``Parameters`` and ``FLOPs`` as plain counts)
and three of mmgate's:

- ``Backbone``: the paper's name of the backbone (``SkipResNet-50``,
  ``ResNeXt-101-32x4d``, ``ConvNeXt-T``; for these families the name
  ``naming.describe_backbone`` gives the config's backbone);
- ``Baseline``: on a gated model, the ``Name`` of the plain model it is
  compared with (same recipe, plain backbone); the benchmark report pairs
  the runs of the two;
- ``Legacy Config``: an older path of the config (a file that only
  inherits the current one), so that runs launched with it match too.

Everything here is read from the YAML; nothing is a Python literal.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

__all__ = [
    'MODEL_INDEX_ENV', 'TASKS', 'REPORT_METRICS', 'DATASETS', 'MetaResult',
    'MetaModel', 'ModelIndex', 'model_index_path', 'load_model_index',
    'paper_complexity'
]

MODEL_INDEX_ENV = 'MMGATE_MODEL_INDEX'

# OpenMMLab metafile vocabulary -> mmgate's report (``setting.TASK_METRICS``)
TASKS = {
    'Object Detection': 'det',
    'Instance Segmentation': 'det',
    'Semantic Segmentation': 'seg',
    'Image Classification': 'cls',
}
REPORT_METRICS = {
    'box AP': 'box_mAP',
    'mask AP': 'mask_mAP',
    'aAcc': 'aAcc',
    'mIoU': 'mIoU',
    'Top 1 Accuracy': 'top1',
}
# metafile ``Dataset`` -> (MMEngine dataset types, number of classes)
DATASETS = {
    'COCO': (('CocoDataset', ), 80),
    'ADE20K': (('ADE20KDataset', ), 150),
    'ImageNet-1k': (('ImageNet', ), 1000),
    'CIFAR-100': (('CIFAR100', ), 100),
}


@dataclass(frozen=True)
class MetaResult:
    """One ``Results`` entry: task, dataset and metrics as written."""
    task: str
    dataset: str
    metrics: Dict[str, float]


@dataclass(frozen=True)
class MetaModel:
    """One ``Models`` entry of a metafile.

    Attributes:
        name (str): ``Name`` (the config file name without ``.py``).
        collection (str, optional): ``In Collection``.
        config (str, optional): ``Config`` as written (relative to the
            index root).
        config_path (str, optional): ``config`` as an absolute path.
        weights (str, optional): ``Weights`` (a URL).
        metadata (dict): ``Metadata``.
        results (tuple[MetaResult]): ``Results``.
        metafile (str): The metafile it was read from.
        root (str): The folder of ``model-index.yml``.
    """
    name: str
    collection: Optional[str] = None
    config: Optional[str] = None
    config_path: Optional[str] = None
    weights: Optional[str] = None
    metadata: Dict = field(default_factory=dict)
    results: Tuple[MetaResult, ...] = ()
    metafile: str = ''
    root: str = ''

    @property
    def baseline(self) -> Optional[str]:
        """``Metadata.Baseline``: the name of the plain model."""
        return self.metadata.get('Baseline')

    @property
    def backbone(self) -> Optional[str]:
        """``Metadata.Backbone``: the paper's name of the backbone."""
        return self.metadata.get('Backbone')

    @property
    def legacy_configs(self) -> Tuple[str, ...]:
        """``Metadata['Legacy Config']``: older paths of the config."""
        legacy = self.metadata.get('Legacy Config') or ()
        return (legacy, ) if isinstance(legacy, str) else tuple(legacy)

    @property
    def config_names(self) -> Tuple[str, ...]:
        """Config file names (without ``.py``) that are this model: the
        current one, then the legacy ones."""
        paths = ((self.config, ) if self.config else ()) + \
            self.legacy_configs
        return tuple(osp.splitext(osp.basename(p))[0] for p in paths)

    @property
    def task(self) -> Optional[str]:
        """The report task ('det', 'seg', 'cls') of the results."""
        for r in self.results:
            if r.task in TASKS:
                return TASKS[r.task]
        return None

    @property
    def dataset(self) -> Optional[str]:
        """The dataset of the results (else ``Metadata['Training Data']``)."""
        for r in self.results:
            return r.dataset
        data = self.metadata.get('Training Data')
        return data if isinstance(data, str) else None

    def paper_metrics(self) -> Dict[str, float]:
        """The published results under the report's metric names
        (``box_mAP``, ``mask_mAP``, ``aAcc``, ``mIoU``, ``top1``)."""
        out = {}
        for r in self.results:
            for key, value in r.metrics.items():
                if key in REPORT_METRICS:
                    out[REPORT_METRICS[key]] = float(value)
        return out

    @property
    def params(self) -> Optional[float]:
        """``Metadata.Parameters`` in millions."""
        v = self.metadata.get('Parameters')
        return None if v is None else float(v) / 1e6

    @property
    def flops(self) -> Optional[float]:
        """``Metadata.FLOPs`` in G."""
        v = self.metadata.get('FLOPs')
        return None if v is None else float(v) / 1e9


class ModelIndex:
    """The models of a ``model-index.yml`` and the metafiles it imports.

    Args:
        path (str): The ``model-index.yml``.
        models (list[MetaModel]): In index order.
        collections (dict): ``Collections`` entries by name.
    """

    def __init__(self, path: str, models: Sequence[MetaModel],
                 collections: Dict[str, dict]):
        self.path = path
        self.root = osp.dirname(path)
        self.models: Dict[str, MetaModel] = {}
        self.duplicates: List[str] = []
        for m in models:
            if m.name in self.models:
                self.duplicates.append(m.name)
            self.models.setdefault(m.name, m)
        self.collections = dict(collections)
        self._by_config: Dict[str, MetaModel] = {}
        for m in self.models.values():
            for name in m.config_names:
                self._by_config.setdefault(name, m)

    def __iter__(self) -> Iterator[MetaModel]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)

    def __contains__(self, name: str) -> bool:
        return name in self.models

    def get(self, name: Optional[str]) -> Optional[MetaModel]:
        return self.models.get(name) if name else None

    def match_config(self, config: Optional[str]) -> Optional[MetaModel]:
        """The model whose config (or legacy config) has the file name of
        ``config`` (a path or a name, with or without ``.py``)."""
        if not config:
            return None
        name = osp.basename(config)
        name = name[:-3] if name.endswith('.py') else name
        return self._by_config.get(name)

    def baseline_of(self, model: MetaModel) -> Optional[MetaModel]:
        return self.get(model.baseline)

    def check(self) -> List[str]:
        """What is wrong with the index: duplicate names, a ``Name`` that
        is not its config's file name, a missing config / legacy config /
        README, an unknown ``Baseline`` or ``In Collection``, a result
        with an unknown task, dataset or metric."""
        problems = [f'duplicate model name {n}' for n in self.duplicates]
        for m in self:
            where = f'{osp.relpath(m.metafile, self.root)}: {m.name}'
            if m.config is None:
                problems.append(f'{where}: no Config')
            else:
                if osp.splitext(osp.basename(m.config))[0] != m.name:
                    problems.append(f'{where}: Name is not the config name '
                                    f'({m.config})')
                if not osp.isfile(m.config_path):
                    problems.append(f'{where}: no file {m.config}')
            for legacy in m.legacy_configs:
                if not osp.isfile(osp.join(self.root, legacy)):
                    problems.append(f'{where}: no legacy file {legacy}')
            if m.baseline is not None and m.baseline not in self.models:
                problems.append(f'{where}: unknown Baseline {m.baseline}')
            if m.collection is not None and \
                    m.collection not in self.collections:
                problems.append(f'{where}: unknown collection '
                                f'{m.collection}')
            for r in m.results:
                if r.task not in TASKS:
                    problems.append(f'{where}: unknown task {r.task}')
                if r.dataset not in DATASETS:
                    problems.append(f'{where}: unknown dataset {r.dataset}')
                for key in r.metrics:
                    if key not in REPORT_METRICS:
                        problems.append(f'{where}: unknown metric {key}')
        names = {}
        for m in self:
            for n in m.config_names:
                if n in names and names[n] != m.name:
                    problems.append(f'config name {n} is both {names[n]} '
                                    f'and {m.name}')
                names.setdefault(n, m.name)
        for name, col in self.collections.items():
            readme = col.get('README')
            if readme and not osp.isfile(osp.join(self.root, readme)):
                problems.append(f'collection {name}: no README {readme}')
        return problems


def _package_dir() -> str:
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def model_index_path(path: Optional[str] = None) -> str:
    """Where the model index is.

    In this order: ``path`` (a ``model-index.yml`` or a folder holding
    one); the environment variable ``MMGATE_MODEL_INDEX``; the installed
    package's ``mmgate/.mim/model-index.yml``; the repository root's
    ``model-index.yml`` (a source checkout).

    Raises:
        FileNotFoundError: None of them exists (the tried paths are named).
    """
    if path is None:
        path = os.environ.get(MODEL_INDEX_ENV) or None
    if path is not None:
        candidates = [
            osp.join(path, 'model-index.yml') if osp.isdir(path) else path
        ]
    else:
        pkg = _package_dir()
        candidates = [
            osp.join(pkg, '.mim', 'model-index.yml'),
            osp.join(osp.dirname(pkg), 'model-index.yml')
        ]
    for c in candidates:
        if osp.isfile(c):
            return osp.realpath(c)  # mmgate/.mim/ links to the checkout
    raise FileNotFoundError('no model index: tried ' + ', '.join(candidates))


def _read_yaml(path: str):
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _parse_model(raw: dict, metafile: str, root: str) -> MetaModel:
    if not isinstance(raw, dict) or not raw.get('Name'):
        raise ValueError(f'{metafile}: a model without a Name: {raw!r}')
    results = []
    for r in _as_list(raw.get('Results')):
        results.append(
            MetaResult(
                task=r.get('Task'),
                dataset=r.get('Dataset'),
                metrics=dict(r.get('Metrics') or {})))
    config = raw.get('Config')
    return MetaModel(
        name=str(raw['Name']),
        collection=raw.get('In Collection'),
        config=config,
        config_path=osp.normpath(osp.join(root, config)) if config else None,
        weights=raw.get('Weights'),
        metadata=dict(raw.get('Metadata') or {}),
        results=tuple(results),
        metafile=metafile,
        root=root)


def load_model_index(path: Optional[str] = None) -> ModelIndex:
    """Read ``model-index.yml`` (found by ``model_index_path``) and every
    metafile it imports (``Import:``, paths relative to it; an index may
    also hold ``Collections`` / ``Models`` itself)."""
    index_path = model_index_path(path)
    root = osp.dirname(index_path)
    models, collections = [], {}

    def read(path: str, seen: Tuple[str, ...]) -> None:
        if path in seen:
            raise ValueError(f'{path}: imported in a cycle')
        raw = _read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f'{path}: expected a mapping')
        for c in _as_list(raw.get('Collections')):
            collections.setdefault(c.get('Name'), c)
        for m in _as_list(raw.get('Models')):
            models.append(_parse_model(m, path, root))
        for imp in _as_list(raw.get('Import')):
            read(
                osp.normpath(osp.join(osp.dirname(path), imp)),
                seen + (path, ))

    read(index_path, ())
    return ModelIndex(index_path, models, collections)


def paper_complexity(
    name: str,
    index: Optional[ModelIndex] = None
) -> Optional[Tuple[Optional[float], Optional[float]]]:
    """``(params in M, FLOPs in G or None)`` that the paper gives for the
    ImageNet-1k classifier with backbone ``name`` (``SkipResNet-50``): the
    ``Parameters`` / ``FLOPs`` of the first model in the index whose
    ``Metadata.Backbone`` is ``name`` and that is an ImageNet-1k
    classifier. None when no such model states them."""
    index = index if index is not None else load_model_index()
    for m in index:
        if m.backbone != name or m.params is None:
            continue
        if m.dataset == 'ImageNet-1k' and m.task in (None, 'cls'):
            return m.params, m.flops
    return None
