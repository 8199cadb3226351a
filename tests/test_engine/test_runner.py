"""``mmgate.Runner``: what a config gets when it selects it (or names no
runner in mmgate's tools): mmgate's checkpoint hook in place of MMEngine's,
the non-finite guard, weights-only reading of other files and a run's own
checkpoints read as such."""
import argparse
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.model import BaseModel

from mmgate.apis.common import build_runner
from mmgate.engine import CheckpointHook, NonFiniteGuardHook, Runner
from mmgate.fileio import CheckpointError, read_checkpoint


class Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.fc(inputs)


def _runner(tmp_path, **kwargs):
    return Runner(
        model=Tiny(),
        work_dir=str(tmp_path),
        default_scope='mmengine',
        log_level='ERROR',
        experiment_name=f'runner_{uuid.uuid4().hex}',
        **kwargs)


def _hooks(runner, cls):
    return [h for h in runner.hooks if isinstance(h, cls)]


@pytest.mark.parametrize(
    'checkpoint',
    [
        None,  # MMEngine's default hook
        dict(type='CheckpointHook', interval=3, max_keep_ckpts=2),
        dict(type='mmgate.CheckpointHook', interval=3, max_keep_ckpts=2),
    ])
def test_mmengines_checkpoint_hook_becomes_mmgates(tmp_path, checkpoint):
    hooks = {} if checkpoint is None else dict(checkpoint=checkpoint)
    runner = _runner(tmp_path, default_hooks=hooks)
    (hook, ) = _hooks(runner, MMEngineCheckpointHook)
    assert type(hook) is CheckpointHook
    if checkpoint is not None:  # the config's options are kept
        assert (hook.interval, hook.max_keep_ckpts) == (3, 2)


def test_a_disabled_checkpoint_hook_stays_disabled(tmp_path):
    runner = _runner(tmp_path, default_hooks=dict(checkpoint=None))
    assert not _hooks(runner, MMEngineCheckpointHook)


@pytest.mark.parametrize(
    'custom',
    [None, [], [dict(type='mmgate.NonFiniteGuardHook', max_skipped_steps=7)]])
def test_the_guard_is_added_once(tmp_path, custom):
    runner = _runner(tmp_path, custom_hooks=custom)
    (guard, ) = _hooks(runner, NonFiniteGuardHook)
    assert guard.max_skipped_steps == (7 if custom else 20)


def test_mmgates_tools_take_mmgates_runner_unless_told(tmp_path):
    cfg = Config(
        dict(
            model=dict(type='mmgate.SkipResNet', depth=18, base_channels=8),
            work_dir=str(tmp_path),
            default_scope='mmdet',
            experiment_name=f'tools_{uuid.uuid4().hex}'))
    assert type(build_runner(cfg)) is Runner
    cfg.runner_type = 'Runner'  # MMEngine's, by the config's choice
    from mmengine.runner import Runner as MMEngineRunner
    assert type(build_runner(cfg)) is MMEngineRunner


def test_weights_only_for_plain_files_a_runs_own_checkpoint_trusted(tmp_path):
    """A weight file that pickles an object is refused by the backbone
    loaders (mmgate's and, once a Runner is built, MMEngine's Pretrained
    init); the same file read as a run's own checkpoint loads."""
    from mmdet.registry import MODELS
    path = str(tmp_path / 'own.pth')
    model = Tiny()
    with torch.no_grad():
        model.fc.weight.fill_(0.5)
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(args=argparse.Namespace(a=1))), path)
    runner = _runner(tmp_path / 'w')
    for cfg in (dict(type='mmdet.ResNet',
                     depth=18), dict(type='mmgate.SkipResNet', depth=18)):
        m = MODELS.build(
            dict(
                cfg,
                base_channels=8,
                init_cfg=dict(type='Pretrained', checkpoint=path)))
        with pytest.raises(
                CheckpointError, match='needs code execution to unpickle'):
            m.init_weights()
    loaded = runner.load_checkpoint(path)
    assert loaded['meta']['args'].a == 1
    assert (runner.model.fc.weight == 0.5).all()
    with pytest.raises(CheckpointError, match='needs code execution'):
        read_checkpoint(path)  # the trust is the Runner's call's only


def test_read_checkpoint(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), meta=argparse.Namespace(a=1)),
        path)
    with pytest.raises(CheckpointError, match='needs code execution'):
        read_checkpoint(path)
    assert read_checkpoint(path, trusted=True)['meta'].a == 1
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(2))), plain)
    assert torch.equal(
        read_checkpoint(plain, map_location='cpu')['state_dict']['w'],
        torch.ones(2))
    with pytest.raises(FileNotFoundError, match='none.pth'):
        read_checkpoint(str(tmp_path / 'none.pth'))
