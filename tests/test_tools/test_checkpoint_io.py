"""Checkpoints that survive being killed, and resuming from damaged ones.

``SAVE_FAULTS`` are rows of the fault table of docs/en/user_guides/faults.md
(rendered by ``test_faults.py``); each is asserted here.
"""
import json
import os
import os.path as osp
import random
import re
import shutil
import signal
import sys
import time

import pytest
import torch

from mmgate.apis.common import resume_checkpoint, stderr_warner
from mmgate.fileio import (CheckpointError, checkpoints_in,
                           find_resume_checkpoint, read_local_checkpoint,
                           verify_checkpoint)
from tests.helpers import load_tool, run_tool
from tests.test_tools.test_faults import Fault

CLS = 'configs/demo/cls_skipresnet18_demo.py'
KILLS = 8  # SIGKILLs while saving, each run resumed from what the last left

SAVE_FAULTS = {
    'kill':
    Fault(
        f'SIGKILL at a random point while a checkpoint is saved ({KILLS} '
        'times in a row, each run resumed from what the last one left; '
        'max_keep_ckpts=1)',
        'nothing at the kill; --resume takes the file last_checkpoint names, '
        'always complete',
        'the previous checkpoint, or the new one, complete; never a '
        'truncated epoch_N.pth or a dangling last_checkpoint',
        quoted=False),
    'damaged_last':
    Fault(
        'tools/train.py --resume when the last checkpoint is truncated',
        'train.py: warning: the last checkpoint (named in {last}): '
        'checkpoint {file} is a truncated zip archive ({size} bytes, no '
        'central directory at its end): it was cut off while being written '
        'or copied; resuming from the previous intact checkpoint {previous}',
        'the previous checkpoint: the resumed run logs the same losses as an '
        'uninterrupted one (RNG states are checkpointed)'),
    'damaged_explicit':
    Fault(
        'tools/train.py --resume CKPT with a truncated CKPT',
        'train.py: error: --resume: checkpoint {file} is a truncated zip '
        'archive ({size} bytes, no central directory at its end): it was cut '
        'off while being written or copied; the previous intact checkpoint '
        'is {previous} (--resume {previous})',
        'every file; nothing is trained'),
    'nothing_left':
    Fault(
        'tools/train.py --resume when last_checkpoint names a deleted file '
        'and no checkpoint is left',
        'train.py: error: --resume: the last checkpoint (named in {last}): '
        'checkpoint {file} does not exist; no earlier intact checkpoint is '
        'in {work_dir}', 'every file; nothing is trained'),
    'no_last_file':
    Fault(
        'tools/train.py --resume with checkpoints but no last_checkpoint '
        '(killed before the first one was recorded)',
        'train.py: warning: {last} does not exist; resuming from the newest '
        'intact checkpoint {file}', 'the newest intact checkpoint'),
}

# ---- SIGKILL while saving ----------------------------------------------


def _toy_runner(work_dir, resume_from, mmengine_saving=False):
    """A Runner whose epoch is one cheap iteration, so that most of its time
    goes to saving 16 MB checkpoints (weights + momentum): mmgate's, or
    MMEngine's own with ``mmengine_saving``."""
    from mmengine.model import BaseModel
    if mmengine_saving:
        from mmengine.runner import Runner
    else:
        from mmgate.engine import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(1024, 2048)

        def forward(self, inputs, mode='tensor'):
            out = self.fc(inputs)
            return dict(loss=out.square().mean()) if mode == 'loss' else out

    loader = torch.utils.data.DataLoader([dict(inputs=torch.ones(1024))],
                                         batch_size=1)
    return Runner(
        model=Toy(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=10**6),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=1, max_keep_ckpts=1),
            logger=dict(type='LoggerHook', interval=10**6)),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmengine',
        log_level='ERROR',
        experiment_name=f'kill_{time.time_ns()}')


def _train_in_child(work_dir, resume_from, mmengine_saving=False):
    """Fork; the child trains (resuming from ``resume_from``) until it is
    killed; with ``mmengine_saving`` on MMEngine's own Runner."""
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        _toy_runner(work_dir, resume_from, mmengine_saving).train()
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


def _wait(pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.001)
    return False


def _kill(pid):
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), f'the child exited by itself ({status})'


def _tmp_files(work_dir):
    return {
        f
        for f in os.listdir(work_dir)
        if re.match(r'^\.epoch_\d+\.pth\.\d+\.tmp$', f)
    }


def _resume_state(work_dir):
    """What --resume would take, checked: (epoch, note)."""
    path, note = find_resume_checkpoint(str(work_dir))
    if path is None:
        return 0, note
    checkpoint = read_local_checkpoint(path, trusted=True)
    return checkpoint['meta']['epoch'], note


def test_sigkill_while_saving_never_leaves_a_bad_checkpoint(tmp_path):
    rng = random.Random(0)
    work_dir = tmp_path / 'kill'
    work_dir.mkdir()
    epoch, mid_write = 0, 0
    for _ in range(KILLS):
        before = _tmp_files(work_dir)
        nth = rng.randint(1, 3)  # kill during the nth save of this run
        resume_from = find_resume_checkpoint(str(work_dir))[0]
        seen = set()

        def saving():  # the nth save of this run has begun
            seen.update(_tmp_files(work_dir) - before)
            return len(seen) >= nth

        pid = _train_in_child(work_dir, resume_from)
        try:
            assert _wait(saving)
            time.sleep(rng.uniform(0, 0.02))  # somewhere in the save
        finally:
            _kill(pid)
        mid_write += bool(_tmp_files(work_dir) - before)
        for path in checkpoints_in(str(work_dir)):
            verify_checkpoint(path)  # no truncated epoch_N.pth
        resumed, note = _resume_state(work_dir)
        assert note is None  # last_checkpoint names a complete file
        assert resumed >= epoch + nth - 1
        epoch = resumed
    # most kills landed while a checkpoint was being written
    assert mid_write >= KILLS // 2, mid_write
    assert epoch >= 1


def test_the_kill_test_fails_with_mmengines_own_saving(tmp_path):
    """Control: MMEngine 0.10.7 deletes the checkpoint max_keep_ckpts drops
    before it writes the new one in place; a kill in between leaves
    last_checkpoint naming a deleted file and nothing to resume."""
    work_dir = tmp_path / 'control'
    work_dir.mkdir()
    broken = 0
    for _ in range(3):
        pid = _train_in_child(work_dir, None, mmengine_saving=True)
        try:
            # the second save starts by deleting epoch_1.pth
            assert _wait(lambda: osp.exists(work_dir / 'last_checkpoint'))
            assert _wait(lambda: not osp.exists(work_dir / 'epoch_1.pth'))
        finally:
            _kill(pid)
        try:
            _resume_state(work_dir)
        except CheckpointError:
            broken += 1
            break
        shutil.rmtree(work_dir)
        work_dir.mkdir()
    assert broken, 'the kill never hit MMEngine\'s saving window'


# ---- resuming from damaged checkpoints ---------------------------------


def _cls_options(root, max_epochs=3):
    data = [
        f'{k}_dataloader.dataset.data_root={root / "imagenet"}'
        for k in ('train', 'val', 'test')
    ]
    return [
        '--cfg-options', *data, 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'train_cfg.max_epochs={max_epochs}',
        f'train_cfg.val_interval={max_epochs}', 'randomness.seed=0',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1'
    ]


def _train(work_dir, root, *extra):
    result = run_tool([
        'tools/train.py', CLS, '--work-dir',
        str(work_dir), *extra, *_cls_options(root)
    ],
                      env={
                          **os.environ, 'OMP_NUM_THREADS': '1'
                      })
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _losses(work_dir):
    """{iteration: loss} logged by the newest run in work_dir."""
    runs = sorted(
        d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        rows = [json.loads(line) for line in f]
    return {r['step']: r['loss'] for r in rows if 'loss' in r}


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 3])
    return dict(file=str(path), size=str(len(data) // 3))


@pytest.fixture(scope='module')
def uninterrupted(tiny_demo, tmp_path_factory):
    """3 epochs of 4 iterations, a checkpoint per epoch."""
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    _train(work_dir, tiny_demo)
    return work_dir


def test_resume_skips_a_damaged_last_checkpoint_and_repeats_the_losses(
        uninterrupted, tiny_demo, tmp_path):
    """Killed after epoch 2's checkpoint was cut off: --resume names it,
    takes epoch 1's, and iterations 5-12 log the uninterrupted losses."""
    work_dir = tmp_path / 'resumed'
    work_dir.mkdir()
    shutil.copy(uninterrupted / 'epoch_1.pth', work_dir)
    shutil.copy(uninterrupted / 'epoch_2.pth', work_dir)
    values = _truncate(work_dir / 'epoch_2.pth')
    last = work_dir / 'last_checkpoint'
    last.write_text(values['file'])
    result = _train(work_dir, tiny_demo, '--resume')
    warning = next(ln for ln in result.stderr.splitlines()
                   if ln.startswith('train.py: warning:'))
    assert warning == SAVE_FAULTS['damaged_last'].sees.format(
        last=last, previous=work_dir / 'epoch_1.pth', **values)
    expected = _losses(uninterrupted)
    resumed = _losses(work_dir)
    assert sorted(resumed) == list(range(5, 13))
    assert resumed == {k: expected[k] for k in resumed}
    # the damaged file is left for inspection, the run wrote a good one
    verify_checkpoint(work_dir / 'epoch_3.pth')
    assert last.read_text() == str(work_dir / 'epoch_3.pth')


def test_without_checkpointed_rng_the_losses_differ(uninterrupted, tiny_demo,
                                                    tmp_path):
    """Control for the test above: the same resume from a checkpoint
    without ``meta.rng_state`` (as MMEngine writes it) draws other
    augmentations."""
    work_dir = tmp_path / 'no_rng'
    work_dir.mkdir()
    checkpoint = torch.load(uninterrupted / 'epoch_1.pth', weights_only=False)
    del checkpoint['meta']['rng_state']
    torch.save(checkpoint, work_dir / 'epoch_1.pth')
    _train(work_dir, tiny_demo, '--resume', str(work_dir / 'epoch_1.pth'))
    expected, resumed = _losses(uninterrupted), _losses(work_dir)
    assert sorted(resumed) == list(range(5, 13))
    assert resumed[5] != expected[5]


def _train_main(argv):
    train_tool = load_tool('train')
    with pytest.raises(SystemExit) as exit_:
        train_tool.main(argv)
    return exit_.value.code


def test_resume_path_to_a_damaged_checkpoint_offers_the_previous(
        uninterrupted, tmp_path):
    work_dir = tmp_path / 'explicit'
    work_dir.mkdir()
    for n in (1, 2):
        shutil.copy(uninterrupted / f'epoch_{n}.pth', work_dir)
    values = _truncate(work_dir / 'epoch_2.pth')
    message = _train_main(
        [CLS, '--work-dir',
         str(work_dir), '--resume', values['file']])
    assert message == SAVE_FAULTS['damaged_explicit'].sees.format(
        previous=work_dir / 'epoch_1.pth', **values)
    assert sorted(os.listdir(work_dir)) == ['epoch_1.pth', 'epoch_2.pth']


def test_resume_with_nothing_left(tmp_path):
    work_dir = tmp_path / 'empty'
    work_dir.mkdir()
    last = work_dir / 'last_checkpoint'
    gone = work_dir / 'epoch_4.pth'
    last.write_text(str(gone))
    message = _train_main([CLS, '--work-dir', str(work_dir), '--resume'])
    assert message == SAVE_FAULTS['nothing_left'].sees.format(
        last=last, file=gone, work_dir=work_dir)
    assert os.listdir(work_dir) == ['last_checkpoint']


def test_resume_without_last_checkpoint_takes_the_newest_intact(
        uninterrupted, tmp_path, capsys):
    warn = stderr_warner('train.py')
    work_dir = tmp_path / 'no_last'
    work_dir.mkdir()
    for n in (1, 2, 3):
        shutil.copy(uninterrupted / f'epoch_{n}.pth', work_dir)
    _truncate(work_dir / 'epoch_3.pth')
    path = resume_checkpoint('auto', str(work_dir), warn)
    assert path == str(work_dir / 'epoch_2.pth')
    assert capsys.readouterr().err.strip() == SAVE_FAULTS['no_last_file'] \
        .sees.format(last=work_dir / 'last_checkpoint', file=path)
    # an intact last checkpoint is taken without a word
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    assert resume_checkpoint('auto', str(work_dir), warn) == path
    assert capsys.readouterr().err == ''


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
