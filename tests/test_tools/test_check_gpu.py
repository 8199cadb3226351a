"""``tools/analysis/check_gpu.py``: one line and exit 0 without CUDA; its
checks run on the CPU (the C kernel, mmgate's bfloat16 AMP wrapper, the
``eager`` compile backend, tiny models) and report what they measured."""
import subprocess
import sys

import pytest
import torch

import mmgate.models  # noqa: F401
from tests.helpers import REPO_ROOT, load_tool

CHECK = load_tool('analysis/check_gpu')


def _statuses(rows):
    return [(r['check'], r['status']) for r in rows]


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA machine')
def test_without_cuda_one_line_and_exit_0():
    out = subprocess.run([sys.executable, 'tools/analysis/check_gpu.py'],
                         cwd=REPO_ROOT,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and 'no CUDA device' in lines[0]


def test_families_and_kernel_on_cpu():
    rows = CHECK.check_families(
        'cpu', ['skipresnet18', 'priorpool_skipresnet18_post'])
    assert _statuses(rows) == [('families/skipresnet18', 'ok'),
                               ('families/priorpool_skipresnet18_post', 'ok')]
    assert 'train: random (pool noise)' in rows[1]['detail']
    rows = CHECK.check_kernel(
        'cpu', ['skipresnet18', 'plain_resnext50'],
        shape=(2, 8, 6, 6),
        repeats=1)
    assert [s for _, s in _statuses(rows)] == ['ok'] * 4 + ['skip'], rows
    assert rows[0]['detail'] == 'cpu: loaded'
    assert 'kernel (c) vs eager' in rows[1]['detail']
    assert 'kernel (none)' in rows[2]['detail']  # a plain ResNet: no gate


def test_kernel_check_fails_when_the_kernel_is_wrong(monkeypatch):
    """The control: a kernel off by 0.1 % is reported."""
    from mmgate.ops import junction
    forward = junction._FORWARD['c']
    monkeypatch.setitem(junction._FORWARD, 'c',
                        lambda *a, **k: forward(*a, **k) * 1.001)
    rows = CHECK.check_kernel(
        'cpu', ['skipresnet18'], shape=(1, 4, 4, 4), repeats=1)
    # (the C kernel takes no channels_last maps: that row is a skip)
    assert [s for _, s in _statuses(rows)] == ['ok', 'FAIL', 'FAIL',
                                               'skip'], rows


def test_kernel_check_fails_when_the_kernel_is_not_used(monkeypatch):
    """The control: gates that silently take the eager path fail."""
    from mmgate.ops import junction
    monkeypatch.setattr(junction, '_kernel_applies', lambda tensors: False)
    rows = CHECK.check_kernel(
        'cpu', ['skipresnet18'], shape=(1, 4, 4, 4), repeats=1)
    assert _statuses(rows)[1] == ('kernel/skipresnet18', 'FAIL')
    assert 'kernel (none)' in rows[1]['detail']


def test_amp_compile_speed_cascade_ddp_on_cpu():
    rows = CHECK.check_amp('cpu', ['skipresnet18'], steps=3)
    assert _statuses(rows) == [('amp/skipresnet18', 'ok')], rows
    assert 'CPUAmpOptimWrapper bfloat16, 3 steps' in rows[0]['detail']
    rows = CHECK.check_compile(
        'cpu',
        backend='eager',
        size=16,
        model_cfg=dict(
            type='mmgate.SkipResNet',
            depth=18,
            base_channels=4,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(0, 1)))
    assert _statuses(rows) == [('compile/eager', 'ok')], rows
    tiny = (dict(type='mmdet.ResNet', depth=18, base_channels=4),
            dict(type='mmgate.SkipResNet', depth=18, base_channels=4))
    rows = CHECK.check_speed(
        'cpu',
        preset=tiny,
        memory=False,
        batch=2,
        size=32,
        repeats=1,
        iters=1,
        warmup=1)
    assert [r['check'] for r in rows
            ] == ['speed/norm_eval=True', 'speed/norm_eval=False']
    assert '| training step time (ms) |' in rows[0]['detail']
    rows = CHECK.check_cascade(
        'cpu',
        size=(64, 96),
        iters=1,
        models=('skipresnet50', ),
        config_overrides={
            'model.backbone.depth': 18,
            'model.backbone.base_channels': 8,
            'model.neck.in_channels': [8, 16, 32, 64],
            'model.train_cfg.rpn_proposal.max_per_img': 32
        })
    assert _statuses(rows) == [('cascade/skipresnet50', 'ok')], rows
    assert '2 images 64x96: loss ' in rows[0]['detail']
    if torch.cuda.device_count() < 2:
        assert _statuses(CHECK.check_ddp()) == [('ddp/syncbn', 'skip')]


def test_a_check_that_raises_is_one_fail_row(monkeypatch):
    monkeypatch.setattr(CHECK, 'check_ddp', lambda: 1 / 0)
    rows = CHECK.run_checks('cpu', ['ddp'])
    assert _statuses(rows) == [('ddp', 'FAIL')]
    assert 'ZeroDivisionError' in rows[0]['detail']
