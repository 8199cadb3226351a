"""Importing mmgate (or a config's ``type='mmgate.SkipResNet'``) and
building from every mmgate registry leaves MMEngine as it was: no class
registered outside mmgate's registries, no attribute of MMEngine's Runner,
hooks, checkpoint loaders or distributed helpers changed. Only building an
``mmgate.Runner`` registers its checkpoint loaders (the one global change,
listed in ``mmgate/engine/__init__.py``).

The tests run in a fresh interpreter: other tests of this pytest process
build Runners.
"""
import ast
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

from tests.helpers import REPO_ROOT

# MMEngine's state, captured in the subprocess.
PRELUDE = '''
import sys
import mmengine.dist.utils as dist_utils
import mmengine.hooks as hooks
import mmengine.registry as registries
import mmengine.runner.checkpoint as ckpt
from mmengine.registry import Registry
from mmengine.runner import Runner


def _registries():
    found = {}
    for mod in [registries] + [m for n, m in sys.modules.items()
                               if n.endswith('.registry') and m]:
        for name, value in vars(mod).items():
            if isinstance(value, Registry) and value.scope != 'mmgate':
                found[f'{value.scope}.{name}'] = value
    return found


def snapshot():
    state = dict(
        runner_attrs={k: id(v) for k, v in vars(Runner).items()},
        dist_utils_attrs={k: id(v) for k, v in vars(dist_utils).items()},
        checkpoint_attrs={k: id(v) for k, v in vars(ckpt).items()},
        schemes=dict(ckpt.CheckpointLoader._schemes),
    )
    for name in dir(hooks):
        cls = getattr(hooks, name)
        if isinstance(cls, type):
            state[f'hook {name}'] = {k: id(v) for k, v in vars(cls).items()}
    for key, reg in _registries().items():
        state[f'registry {key}'] = dict(reg._module_dict)
    return state


def changed(a, b):
    return sorted(k for k in a if a[k] != b.get(k))
'''


def _python(code, *args):
    proc = subprocess.run(
        [sys.executable, '-c', PRELUDE + textwrap.dedent(code), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ, 'OMP_NUM_THREADS': '1'
        })
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_importing_mmgate_and_building_changes_nothing(tmp_path):
    ckpt_file = str(tmp_path / 'skipresnet18.pth')
    out = _python(
        '''
        import mmdet.registry, mmseg.registry, mmpretrain.registry  # noqa
        # the libraries' own lazy registrations happen first
        for reg in _registries().values():
            reg.import_from_location()
        before = snapshot()
        assert 'mmgate' not in sys.modules

        # through the registry alone (no import, no custom_imports)
        from mmdet.registry import MODELS
        cfg = dict(type='mmgate.SkipResNet', depth=18, base_channels=8)
        m = MODELS.build(cfg)
        assert type(m).__module__.startswith('mmgate.'), type(m)
        assert changed(before, snapshot()) == [], changed(before, snapshot())

        # every mmgate package, and a build from every mmgate registry
        import mmgate, mmgate.models, mmgate.engine, mmgate.apis  # noqa
        import mmgate.datasets, mmgate.fileio, mmgate.ops  # noqa
        from mmengine.registry import HOOKS, OPTIM_WRAPPERS, RUNNERS
        import torch
        for name in ('CheckpointHook', 'NonFiniteGuardHook',
                     'LearnableGroupStatsHook'):
            HOOKS.build(dict(type=f'mmgate.{name}'))
        OPTIM_WRAPPERS.build(dict(
            type='mmgate.CPUAmpOptimWrapper',
            optimizer=torch.optim.SGD(m.parameters(), lr=0.1)))
        assert RUNNERS.get('mmgate.Runner').__module__ == \\
            'mmgate.engine.runner'
        for name in ('GaussianPriorConv2d', 'LearnableGroupConv2d'):
            MODELS.build(dict(type=f'mmgate.{name}', in_channels=4,
                              out_channels=4, kernel_size=3))

        # mmgate's strict pretrained loader reads without changing anything
        torch.save(dict(state_dict=m.state_dict()), sys.argv[1])
        m = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained',
                                                 checkpoint=sys.argv[1])))
        m.init_weights()
        assert changed(before, snapshot()) == [], changed(before, snapshot())
        # mmgate's classes are in mmgate's registries only
        for key, reg in _registries().items():
            assert not [n for n, c in reg._module_dict.items()
                        if c.__module__.startswith('mmgate')], key
        print('unchanged')
    ''', ckpt_file)
    assert out.strip().endswith('unchanged')


def test_the_isolation_test_sees_a_registration():
    """Control: a class registered into MMEngine's root registry (what
    mmgate's plug-in layers used to do) is seen by the snapshot."""
    out = _python('''
        before = snapshot()
        from mmengine.registry import MODELS
        MODELS.register_module('SomethingNew', module=type('X', (), {}))
        print(changed(before, snapshot()))
    ''')
    assert "'registry mmengine.MODELS'" in out


def test_building_mmgates_runner_registers_its_loaders_only(tmp_path):
    out = _python(
        '''
        import torch.nn as nn
        from mmengine.model import BaseModel

        class Tiny(BaseModel):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                return self.fc(inputs)

        # what building any Runner registers lazily (MMEngine's own)
        Runner(model=Tiny(), work_dir=sys.argv[1], default_scope='mmengine')
        import mmgate.engine
        before = snapshot()
        runner = mmgate.engine.Runner(model=Tiny(), work_dir=sys.argv[1],
                                      default_scope='mmengine')
        after = snapshot()
        assert changed(before, after) == ['schemes'], changed(before, after)
        moved = sorted(p for p in before['schemes']
                       if after['schemes'][p] is not before['schemes'][p])
        assert moved == ['', 'http://', 'https://'], moved
        from mmgate.engine.runner import _weights_only_loader
        assert {after['schemes'][p] for p in moved} == {_weights_only_loader}
        print('loaders only')
    ''', str(tmp_path / 'work_dir'))
    assert out.strip().endswith('loaders only')


LIBRARIES = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'torch')


def _assignments_to_other_libraries(path):
    """``module.attr = ...`` / ``setattr(module, ...)`` in a file, where
    ``module`` is one of another library's modules or classes."""
    with open(path) as f:
        tree = ast.parse(f.read())
    foreign = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = getattr(node, 'module', None) or ''
            for alias in node.names:
                full = mod or alias.name
                if full.startswith(LIBRARIES):
                    foreign.add(alias.asname or alias.name.split('.')[0])
        # ext = importlib.import_module('mmcv._ext')
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, 'attr', '') == 'import_module' \
                and node.value.args and isinstance(node.value.args[0],
                                                   ast.Constant) \
                and str(node.value.args[0].value).startswith(LIBRARIES):
            foreign |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(
                    t.value, ast.Name) and t.value.id in foreign:
                found.append(f'{path}:{node.lineno}')
        if isinstance(node, ast.Call) and getattr(
                node.func, 'id', None) == 'setattr' and isinstance(
                    node.args[0], ast.Name) and node.args[0].id in foreign:
            found.append(f'{path}:{node.lineno}')
    return found


def test_no_patches_outside_the_listed_ones():
    """No assignment to an attribute of another library's module or class
    in mmgate/, except the one listed (with why) in mmgate/engine/__init__:
    mmcv._ext's functions during CPU AMP (mmgate/engine/amp.py)."""
    found = []
    for path in glob.glob(
            osp.join(REPO_ROOT, 'mmgate', '**', '*.py'), recursive=True):
        found += _assignments_to_other_libraries(path)
    found = [osp.relpath(f, REPO_ROOT) for f in found]
    allowed = [f for f in found if f.startswith('mmgate/engine/amp.py:')]
    with open(osp.join(REPO_ROOT, 'mmgate', 'engine', '__init__.py')) as f:
        listed = f.read()
    assert 'mmcv_ops_in_fp32' in listed and 'register_scheme' in listed
    assert sorted(set(found) - set(allowed)) == [], found
    assert len(allowed) == 2, allowed  # the shim and its restore
    assert not any(
        re.search(r'\bmmgate\.compat\b',
                  open(p).read())
        for p in glob.glob(
            osp.join(REPO_ROOT, 'mmgate', '**', '*.py'), recursive=True))


def test_the_patch_finder_finds_patches(tmp_path):
    """Control: the finder above flags the kind of code mmgate no longer
    has (rebinding a Runner method, a checkpoint module's function and a
    distributed helper)."""
    path = tmp_path / 'patches.py'
    path.write_text(
        textwrap.dedent('''
        import mmengine.dist.utils as dist_utils
        from mmengine.runner import Runner
        from mmengine.runner import checkpoint as ckpt

        Runner.load_checkpoint = lambda self, *a: None
        ckpt.load_url = None
        setattr(dist_utils, '_init_dist_pytorch', None)
        model = object()
        setattr(model, 'fc', None)  # an object of the caller's: fine
    '''))
    assert len(_assignments_to_other_libraries(str(path))) == 3
