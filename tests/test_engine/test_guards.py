"""A run that goes wrong stops with one line and keeps its last good
checkpoint: non-finite losses (also under AMP loss scaling), non-finite
models at a save, non-finite weights on load, a full disk.

``GUARD_FAULTS`` are rows of the fault table of
docs/en/user_guides/faults.md (rendered by
``tests/test_tools/test_faults.py``); each is asserted here. Each guard has
a control test: the same fault on MMEngine's own Runner goes unnoticed.
"""
import errno
import math
import os
import os.path as osp
import re
import subprocess
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner as MMEngineRunner

from mmgate.engine import CheckpointSaveError, NonFiniteError, Runner
from mmgate.fileio import (CheckpointError, nonfinite_tensors,
                           read_local_checkpoint, verify_checkpoint)
from tests.helpers import coco_options, run_tool
from tests.test_tools.test_faults import Fault

DET = 'configs/demo/cascade_rcnn_skipresnet18_demo.py'
CLS = 'configs/demo/cls_skipresnet18_demo.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

GUARD_FAULTS = {
    'nan_loss':
    Fault(
        'the det demo with optim_wrapper.optimizer.lr=1e6 (tools/train.py)',
        'train.py: error: non-finite loss at iteration {iter} (epoch '
        '{epoch}, batch {batch}): NaN in {terms}; no checkpoint was saved '
        'before it: train again with a smaller lr (--cfg-options '
        'optim_wrapper.optimizer.lr=100000)',
        'the run stops at that iteration (within the first 50); no '
        'checkpoint is written'),
    'nan_after_checkpoint':
    Fault(
        'a loss that turns NaN in epoch 2, after epoch_1.pth was saved',
        'non-finite loss at iteration {iter} (epoch 2, batch {batch}): NaN '
        'in loss; the last good checkpoint is {previous}: resume from it '
        'with a smaller lr (--resume {previous} --cfg-options '
        'optim_wrapper.optimizer.lr=0.001)',
        'epoch_1.pth (finite), named by last_checkpoint; no later '
        'checkpoint'),
    'amp_skips':
    Fault(
        'fp16 loss scaling whose every step overflows (GradScaler skips '
        '20 steps in a row)',
        'training diverged at iteration 20 (epoch 1, batch 20): 20 '
        'consecutive steps skipped by the fp16 GradScaler (loss scale now '
        '{scale}); no checkpoint was saved before it: train again with a '
        'smaller lr (--cfg-options optim_wrapper.optimizer.lr=0.001)',
        'the run stops; fewer consecutive skips (19) train on'),
    'nan_model_save':
    Fault(
        'a buffer that turns NaN while the losses stay finite, at the next '
        'checkpoint',
        'refusing to save checkpoint {target}: the model holds non-finite '
        'values (NaN / Inf) in 1 tensor (stat); the last good checkpoint is '
        '{previous}', 'the previous checkpoint and last_checkpoint'),
    'nan_weights_test':
    Fault(
        'tools/test.py CONFIG with a checkpoint whose weights are NaN',
        'test.py: error: checkpoint {file} holds non-finite values (NaN / '
        'Inf) in {count} tensors ({names}, ... +{more} more): refused',
        'nothing is evaluated'),
    'disk_full':
    Fault(
        'the disk fills up while the second checkpoint is saved (a real '
        'tmpfs; max_keep_ckpts=1)',
        'train.py: error: cannot save checkpoint {target}: [Errno 28] No '
        'space left on device; {free} MiB free in {dir}; the previous '
        'checkpoint {previous} and {pointer} are kept',
        'epoch_1.pth (intact) and last_checkpoint naming it; no temporary '
        'file is left'),
}

# ---- a toy model whose loss or buffer turns non-finite on cue ----------


class Toy(BaseModel):
    """``loss = mean(fc(x)^2) * scale``; from training step ``nan_at`` on
    the loss is multiplied by NaN, from ``bad_buffer_at`` on a buffer the
    loss does not use is NaN, and ``overflow`` makes every gradient
    infinite (fp16 overflow, as a GradScaler sees it)."""

    def __init__(self, nan_at=None, bad_buffer_at=None, overflow=0):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer('stat', torch.zeros(2))
        self.nan_at, self.bad_buffer_at = nan_at, bad_buffer_at
        self.overflow = overflow
        self.steps = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(inputs)
        if mode != 'loss':
            return out
        self.steps += 1
        loss = out.square().mean()
        if self.nan_at is not None and self.steps >= self.nan_at:
            loss = loss * math.nan
        if self.bad_buffer_at is not None and \
                self.steps >= self.bad_buffer_at:
            self.stat.fill_(math.nan)
        if self.steps <= self.overflow:
            # adds 0, whose gradient is Inf: sqrt'(0)
            zero = (self.fc.bias - self.fc.bias.detach()).sum()
            loss = loss + zero.pow(0.5)
        return dict(loss=loss)


def _loader(n=4):
    return torch.utils.data.DataLoader(
        [dict(inputs=torch.ones(4) * (i + 1)) for i in range(n)], batch_size=1)


def _runner(runner_cls, work_dir, model, max_epochs=3, loader=None, **kwargs):
    """4 iterations an epoch, a checkpoint each (max_keep_ckpts=1), lr 0.01
    (also in ``cfg``, which the non-finite message reads)."""
    kwargs.setdefault('optim_wrapper',
                      dict(optimizer=dict(type='SGD', lr=0.01)))
    return runner_cls(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=loader or _loader(),
        cfg=dict(optim_wrapper=dict(optimizer=dict(lr=0.01))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=1, max_keep_ckpts=1),
            logger=dict(type='LoggerHook', interval=100)),
        default_scope='mmengine',
        log_level='ERROR',
        experiment_name=f'guard_{uuid.uuid4().hex}',
        **kwargs)


def _last(work_dir):
    return (work_dir / 'last_checkpoint').read_text().strip()


# ---- non-finite losses ---------------------------------------------------


def test_nan_loss_stops_at_once_and_names_the_last_good_checkpoint(tmp_path):
    runner = _runner(Runner, tmp_path, Toy(nan_at=6))  # epoch 2, batch 2
    with pytest.raises(NonFiniteError) as err:
        runner.train()
    last = str(tmp_path / 'epoch_1.pth')
    assert str(err.value) == GUARD_FAULTS['nan_after_checkpoint'].sees \
        .format(iter=6, batch=2, previous=last)
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) \
        == ['epoch_1.pth']
    assert _last(tmp_path) == last
    state = read_local_checkpoint(last, trusted=True)['state_dict']
    assert nonfinite_tensors(state) == []


def test_mmengines_runner_trains_on_with_nan_losses(tmp_path):
    """Control: MMEngine's Runner runs every epoch and saves NaN
    weights as the checkpoint a --resume takes next."""
    _runner(MMEngineRunner, tmp_path, Toy(nan_at=6)).train()
    last = _last(tmp_path)
    assert last.endswith('epoch_3.pth')
    state = torch.load(last, weights_only=False)['state_dict']
    assert nonfinite_tensors(state) == ['fc.weight', 'fc.bias']


def test_the_det_demo_with_lr_1e6_stops_in_its_first_iterations(
        tiny_demo, tmp_path):
    work_dir = tmp_path / 'nan'
    result = run_tool([
        'tools/train.py', DET, '--work-dir',
        str(work_dir), '--cfg-options', *coco_options(tiny_demo / 'coco'),
        'optim_wrapper.optimizer.lr=1e6', 'train_cfg.max_epochs=10'
    ],
                      env=ENV)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    found = re.fullmatch(
        r'train\.py: error: non-finite loss at iteration (\d+) \(epoch '
        r'(\d+), batch (\d+)\): NaN in (.*); no checkpoint .*', line)
    assert found, line
    it, epoch, batch, terms = found.groups()
    assert int(it) <= 50 and terms.startswith('loss, ')
    assert line == GUARD_FAULTS['nan_loss'].sees.format(
        iter=it, epoch=epoch, batch=batch, terms=terms)
    assert not [f for f in os.listdir(work_dir) if f.endswith('.pth')]
    assert not osp.exists(work_dir / 'last_checkpoint')


class ScaledOptimWrapper(OptimWrapper):
    """MMEngine's AmpOptimWrapper loss scaling (backward on the scaled loss,
    unscale, a step that the GradScaler skips on Inf / NaN gradients,
    update) with a real ``torch.amp.GradScaler`` on the CPU: MMEngine's own
    wrapper refuses a machine without CUDA."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_scaler = torch.amp.GradScaler('cpu')

    def backward(self, loss, **kwargs):
        self.loss_scaler.scale(loss).backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs):
        self.loss_scaler.unscale_(self.optimizer)
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()


def _scaled_runner(work_dir, overflow):
    """40 iterations in one epoch, the first ``overflow`` of them with
    infinite gradients."""
    model = Toy(overflow=overflow)
    optim = ScaledOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    return _runner(
        Runner,
        work_dir,
        model,
        max_epochs=1,
        optim_wrapper=optim,
        loader=_loader(40))


def test_amp_stops_after_20_skipped_steps_in_a_row(tmp_path):
    runner = _scaled_runner(tmp_path, overflow=40)
    with pytest.raises(NonFiniteError) as err:
        runner.train()
    scale = runner.optim_wrapper.loss_scaler.get_scale()
    assert scale == 2.**16 / 2**20
    assert str(
        err.value) == GUARD_FAULTS['amp_skips'].sees.format(scale=f'{scale:g}')


def test_amp_trains_on_through_19_skipped_steps(tmp_path):
    """The GradScaler's normal start (a run of skipped steps while the scale
    comes down) is no divergence."""
    runner = _scaled_runner(tmp_path, overflow=19)
    runner.train()
    assert runner.iter == 40
    assert runner.optim_wrapper.loss_scaler.get_scale() < 2.**16


# ---- non-finite models are never saved -------------------------------


def test_a_non_finite_model_is_never_saved(tmp_path):
    runner = _runner(Runner, tmp_path, Toy(bad_buffer_at=6))
    with pytest.raises(NonFiniteError) as err:
        runner.train()
    last = str(tmp_path / 'epoch_1.pth')
    assert str(err.value) == GUARD_FAULTS['nan_model_save'].sees.format(
        target=tmp_path / 'epoch_2.pth', previous=last)
    assert _last(tmp_path) == last
    assert [f for f in os.listdir(tmp_path) if f.endswith('.pth')] == \
        ['epoch_1.pth']


def test_mmengines_runner_saves_a_non_finite_model(tmp_path):
    """Control for the test above."""
    _runner(MMEngineRunner, tmp_path, Toy(bad_buffer_at=6)).train()
    state = torch.load(_last(tmp_path), weights_only=False)['state_dict']
    assert nonfinite_tensors(state) == ['stat']


# ---- non-finite weights on load ----------------------------------------


def _nan_checkpoint(run_dir, path):
    """A run's own checkpoint (the cls demo's, as tools/train.py wrote it)
    with every floating-point weight NaN."""
    checkpoint = read_local_checkpoint(run_dir / 'epoch_1.pth', trusted=True)
    for v in checkpoint['state_dict'].values():
        if v.is_floating_point():
            v.fill_(math.nan)
    torch.save(checkpoint, path)
    return list(checkpoint['state_dict'])


@pytest.fixture(scope='module')
def cls_run(tiny_demo, tmp_path_factory):
    """One epoch of the cls demo on the tiny set (1 iteration)."""
    work_dir = tmp_path_factory.mktemp('cls_run')
    result = run_tool([
        'tools/train.py', CLS, '--work-dir',
        str(work_dir), '--cfg-options', *_cls_data(tiny_demo),
        'train_cfg.max_epochs=1'
    ],
                      env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


def _cls_data(root):
    return [
        f'{k}_dataloader.dataset.data_root={root / "imagenet"}'
        for k in ('train', 'val', 'test')
    ] + [
        f'{k}_dataloader.{o}' for k in ('train', 'val', 'test')
        for o in ('num_workers=0', 'persistent_workers=False')
    ]


def test_test_tool_refuses_nan_weights(cls_run, tiny_demo, tmp_path):
    path = tmp_path / 'nan.pth'
    names = [
        n for n in _nan_checkpoint(cls_run, path)
        if not n.endswith('num_batches_tracked')
    ]
    result = run_tool([
        'tools/test.py', CLS,
        str(path), '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', *_cls_data(tiny_demo)
    ],
                      env=ENV)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        GUARD_FAULTS['nan_weights_test'].sees.format(
            file=path, count=len(names), names=', '.join(names[:5]),
            more=len(names) - 5)


def test_resume_refuses_nan_weights(cls_run, tmp_path):
    path = tmp_path / 'nan.pth'
    _nan_checkpoint(cls_run, path)
    runner = _runner(Runner, tmp_path / 'w', Toy())
    with pytest.raises(CheckpointError, match='holds non-finite values'):
        runner.load_checkpoint(str(path))
    # control: MMEngine's loading takes NaN weights without a word
    plain = _runner(MMEngineRunner, tmp_path / 'plain', Toy())
    state = {
        k: torch.full_like(v, math.nan)
        for k, v in plain.model.state_dict().items()
    }
    torch.save(dict(state_dict=state), tmp_path / 'toy_nan.pth')
    plain.load_checkpoint(str(tmp_path / 'toy_nan.pth'))
    assert torch.isnan(plain.model.fc.weight).all()


# ---- a full disk -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs mount of ``size`` bytes (root only), or None."""
    mounts = []

    def mount(size):
        point = tmp_path / f'disk{len(mounts)}'
        point.mkdir()
        proc = subprocess.run([
            'mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs',
            str(point)
        ],
                              capture_output=True)
        if proc.returncode != 0:
            return None
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(['umount', '-l', str(point)], capture_output=True)


def _checkpoint_size(run_dir):
    return osp.getsize(run_dir / 'epoch_1.pth')


def _full_disk_run(cls_run, tiny_demo, tmp_path, small_disk, runner_type,
                   hook_type, keep):
    # room for one checkpoint and a half: the second save runs out of space
    size = _checkpoint_size(cls_run) * 3 // 2
    disk = small_disk(size)
    if disk is None:
        pytest.skip('cannot mount a tmpfs here (needs root); '
                    'test_full_disk_injected covers the same path')
    work_dir = tmp_path / 'w'
    result = run_tool([
        'tools/train.py', CLS, '--work-dir',
        str(work_dir), '--cfg-options', *_cls_data(tiny_demo),
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
        f'runner_type={runner_type}',
        f'default_hooks.checkpoint.type={hook_type}',
        f'default_hooks.checkpoint.out_dir={disk}',
        'default_hooks.checkpoint.interval=1',
        f'default_hooks.checkpoint.max_keep_ckpts={keep}'
    ],
                      env=ENV)
    return result, disk / 'w', work_dir


def test_full_disk_keeps_the_previous_checkpoint(cls_run, tiny_demo, tmp_path,
                                                 small_disk):
    result, ckpt_dir, work_dir = _full_disk_run(
        cls_run,
        tiny_demo,
        tmp_path,
        small_disk,
        'mmgate.Runner',
        'mmgate.CheckpointHook',
        keep=1)
    assert result.returncode == 1, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    free = re.search(r'; ([\d.]+) MiB free in ', line)
    assert free, line
    assert line == GUARD_FAULTS['disk_full'].sees.format(
        target=ckpt_dir / 'epoch_2.pth',
        free=free[1],
        dir=ckpt_dir,
        previous=ckpt_dir / 'epoch_1.pth',
        pointer=work_dir / 'last_checkpoint')
    assert sorted(os.listdir(ckpt_dir)) == ['epoch_1.pth']
    verify_checkpoint(ckpt_dir / 'epoch_1.pth')
    assert _last(work_dir) == str(ckpt_dir / 'epoch_1.pth')


def test_full_disk_with_mmengines_runner_leaves_half_a_file(
        cls_run, tiny_demo, tmp_path, small_disk):
    """Control: MMEngine writes epoch_2.pth in place; the full disk leaves
    it cut off, next to a traceback (with max_keep_ckpts=1 MMEngine would
    delete epoch_1.pth first and make room)."""
    result, ckpt_dir, work_dir = _full_disk_run(
        cls_run,
        tiny_demo,
        tmp_path,
        small_disk,
        'Runner',
        'CheckpointHook',
        keep=-1)
    assert result.returncode != 0
    assert 'Traceback' in result.stderr
    assert 'No space left on device' in result.stderr
    with pytest.raises(CheckpointError, match='truncated'):
        verify_checkpoint(ckpt_dir / 'epoch_2.pth')


def test_full_disk_injected(tmp_path, monkeypatch):
    """The same path where no tmpfs can be mounted: the second write fails
    with ENOSPC (injected into MMEngine's local file backend)."""
    from mmengine.fileio.backends import LocalBackend
    put = LocalBackend.put
    calls = []

    def put_or_fail(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])  # what a full disk leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put_or_fail)
    runner = _runner(Runner, tmp_path, Toy())
    with pytest.raises(CheckpointSaveError) as err:
        runner.train()
    assert re.fullmatch(
        r'cannot save checkpoint \S+epoch_2\.pth: \[Errno 28\] No space '
        r'left on device; [\d.]+ MiB free in \S+; the previous checkpoint '
        r'\S+epoch_1\.pth and \S+last_checkpoint are kept', str(err.value)), \
        str(err.value)
    assert sorted(
        f for f in os.listdir(tmp_path)
        if f.endswith(('.pth', '.tmp'))) == ['epoch_1.pth']
    verify_checkpoint(tmp_path / 'epoch_1.pth')
    assert _last(tmp_path) == str(tmp_path / 'epoch_1.pth')
