"""mmgate.compat: importing mmgate patches nothing; ``apply()`` patches
MMEngine once; checkpoints keep mmgate's weights-only rule either way.

The tests that inspect MMEngine's global state run in a fresh interpreter:
other tests in this pytest process call ``mmgate.compat.apply()``.
"""
import argparse
import ast
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

from mmgate import compat
from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT

# What mmgate.compat.apply() patches, captured in the subprocess.
PRELUDE = '''
import sys
import mmengine.dist.utils as dist_utils
import mmengine.runner.checkpoint as ckpt
from mmengine.runner import Runner


def snapshot():
    return dict(
        resume=Runner.__dict__['resume'],
        load_checkpoint=Runner.__dict__['load_checkpoint'],
        wrap_model=Runner.__dict__['wrap_model'],
        load_url=ckpt.load_url,
        init_dist_pytorch=dist_utils._init_dist_pytorch,
        init_dist_slurm=dist_utils._init_dist_slurm,
        schemes=dict(ckpt.CheckpointLoader._schemes),
        runner_attrs=sorted(vars(Runner)),
        dist_utils_attrs=sorted(vars(dist_utils)),
        checkpoint_attrs=sorted(vars(ckpt)),
    )


def changed(a, b):
    return sorted(k for k in a if a[k] != b[k])
'''


def _python(code, *args):
    proc = subprocess.run(
        [sys.executable, '-c', PRELUDE + textwrap.dedent(code), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_importing_mmgate_patches_nothing(tmp_path):
    """A config's ``type='mmgate.SkipResNet'`` imports mmgate through the
    registry; that, importing mmgate and mmgate.compat, and loading
    pretrained weights into an mmgate backbone leave MMEngine as it was."""
    ckpt = str(tmp_path / 'skipresnet18.pth')
    out = _python('''
        import mmdet.registry
        before = snapshot()
        assert 'mmgate' not in sys.modules

        # through the registry alone (no import, no custom_imports)
        from mmdet.registry import MODELS
        cfg = dict(type='mmgate.SkipResNet', depth=18, base_channels=8)
        m = MODELS.build(cfg)
        assert type(m).__module__.startswith('mmgate.'), type(m)
        assert 'mmgate' in sys.modules
        assert changed(before, snapshot()) == [], changed(before, snapshot())

        import mmgate, mmgate.models, mmgate.compat  # noqa: E401
        m = MODELS.build(cfg)
        assert changed(before, snapshot()) == [], changed(before, snapshot())
        assert not mmgate.compat.is_applied()

        # mmgate's strict pretrained loader reads without patching
        import torch
        torch.save(dict(state_dict=m.state_dict()), sys.argv[1])
        m = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained',
                                                 checkpoint=sys.argv[1])))
        m.init_weights()
        assert changed(before, snapshot()) == [], changed(before, snapshot())
        assert not hasattr(Runner, '_mmgate_trusting')
        assert not hasattr(dist_utils, '_mmgate_patched')
        print('unchanged')
    ''', ckpt)
    assert out.strip().endswith('unchanged')


def test_apply_patches_once():
    out = _python('''
        import functools
        import torch
        import mmgate.compat

        before = snapshot()
        assert not mmgate.compat.is_applied()
        mmgate.compat.apply()
        assert mmgate.compat.is_applied()
        after = snapshot()
        assert set(changed(before, after)) >= {
            'resume', 'load_checkpoint', 'wrap_model', 'load_url',
            'init_dist_pytorch', 'init_dist_slurm', 'schemes'}, \\
            changed(before, after)
        # the Runner methods wrap MMEngine's own ones
        for name in ('resume', 'load_checkpoint', 'wrap_model'):
            assert after[name].__wrapped__ is before[name], name
        # only the local scheme is replaced, by mmgate's
        assert after['schemes'].keys() == before['schemes'].keys()
        assert [p for p in before['schemes']
                if after['schemes'][p] is not before['schemes'][p]] == ['']
        assert after['schemes'][''] is mmgate.compat._load_from_local
        assert isinstance(ckpt.load_url, functools.partial)
        assert ckpt.load_url.func is torch.hub.load_state_dict_from_url
        assert ckpt.load_url.keywords == dict(weights_only=True)

        mmgate.compat.apply()  # idempotent
        again = snapshot()
        assert changed(after, again) == [], changed(after, again)
        print('patched once')
    ''')
    assert out.strip().endswith('patched once')


def test_weights_only_rule_after_apply(tmp_path):
    """As in the tools: a plain weight file that pickles objects is refused
    (MMEngine's Pretrained init and mmgate's loader), a run's own checkpoint
    read by ``Runner.load_checkpoint`` is not."""
    evil = str(tmp_path / 'evil.pth')
    out = _python('''
        import argparse
        import pytest
        import torch
        import torch.nn as nn
        from mmengine.model import BaseModel

        import mmgate.compat
        mmgate.compat.apply()
        from mmdet.registry import MODELS

        class Tiny(BaseModel):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                return self.fc(inputs)

        model = Tiny()
        with torch.no_grad():
            model.fc.weight.fill_(0.5)
        # a "run's own" checkpoint: MMEngine objects in it (here a
        # Namespace, which weights_only=True refuses)
        torch.save(dict(state_dict=model.state_dict(),
                        meta=dict(args=argparse.Namespace(a=1))), sys.argv[1])

        with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
            ckpt._load_checkpoint(sys.argv[1])
        for cfg in (dict(type='ResNet', depth=18),
                    dict(type='mmgate.SkipResNet', depth=18)):
            m = MODELS.build(dict(cfg, base_channels=8, init_cfg=dict(
                type='Pretrained', checkpoint=sys.argv[1])))
            with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
                m.init_weights()

        runner = Runner(model=Tiny(), work_dir=sys.argv[2],
                        default_scope='mmengine')
        loaded = runner.load_checkpoint(sys.argv[1])
        assert loaded['meta']['args'].a == 1
        assert (runner.model.fc.weight == 0.5).all()
        # the trust ends with the call
        with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
            ckpt._load_checkpoint(sys.argv[1])
        print('refused and trusted')
    ''', evil, str(tmp_path / 'work_dir'))
    assert out.strip().endswith('refused and trusted')


def test_read_checkpoint_without_apply(tmp_path):
    """``read_checkpoint`` (for library code) applies the rule itself."""
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2)),
                    meta=argparse.Namespace(a=1)), path)
    with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
        compat.read_checkpoint(path)
    assert compat.read_checkpoint(path, trusted=True)['meta'].a == 1
    with compat.trusted_checkpoints():
        assert compat.read_checkpoint(path)['meta'].a == 1
        # an explicit False wins over the context
        with pytest.raises(Exception, match='(?i)weights.only|unpickl'):
            compat.read_checkpoint(path, trusted=False)
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2))), plain)
    assert torch.equal(
        compat.read_checkpoint(plain, map_location='cpu')['state_dict']['w'],
        torch.ones(2))
    with pytest.raises(FileNotFoundError, match='none.pth'):
        compat.read_checkpoint(str(tmp_path / 'none.pth'))


ENTRY_POINTS = ('tools/train.py', 'tools/test.py', 'tools/misc/run_demo.py',
                'tools/analysis/gate_analysis.py',
                'tools/analysis/benchmark_speed.py')


@pytest.mark.parametrize('path', ENTRY_POINTS)
def test_entry_points_apply_first(path):
    """mmgate's tools call ``mmgate.compat.apply()`` first in ``main``
    (after imports only), before anything builds a Runner."""
    with open(osp.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    main = next(n for n in tree.body
                if isinstance(n, ast.FunctionDef) and n.name == 'main')
    for stmt in main.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        assert isinstance(stmt, ast.Expr) and isinstance(stmt.value,
                                                         ast.Call), path
        assert ast.unparse(stmt.value) == 'mmgate.compat.apply()', path
        break
    else:
        pytest.fail(f'{path}: main() does not call mmgate.compat.apply()')
