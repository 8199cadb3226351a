"""The command lines of tools/: argument parsing, a real 2-process launch on
the CPU (gloo) and a killed run that resumes."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from mmgate.apis import common, testing, training
from tests.helpers import REPO_ROOT as ROOT
from tests.helpers import coco_options, free_port, run_tool

DET = 'configs/demo/cascade_rcnn_skipresnet18_demo.py'
CLS = 'configs/demo/cls_skipresnet18_demo.py'


def test_train_and_test_take_mmdetections_flags():
    args = training.parse_args([
        DET, '--work-dir', 'w', '--amp', '--auto-scale-lr', '--resume',
        '--launcher', 'pytorch', '--local-rank', '3', '--cfg-options',
        'train_cfg.max_epochs=2', 'model.backbone.depth=34'
    ])
    assert (args.work_dir, args.amp, args.auto_scale_lr, args.resume,
            args.launcher, args.local_rank) == ('w', True, True, 'auto',
                                                'pytorch', 3)
    assert args.cfg_options == {
        'train_cfg.max_epochs': 2,
        'model.backbone.depth': 34
    }
    assert training.parse_args([DET, '--resume', 'x.pth']).resume == \
        'x.pth'
    cfg = common.setup_cfg(
        training.parse_args([DET, '--cfg-options', 'train_cfg.max_epochs=2']))
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.work_dir == './work_dirs/cascade_rcnn_skipresnet18_demo'
    assert cfg.launcher == 'none'

    args = testing.parse_args([
        DET, 'c.pth', '--out', 'r.pkl', '--show-dir', 'v', '--tta',
        '--work-dir', 'w'
    ])
    assert (args.checkpoint, args.out, args.show_dir,
            args.tta) == ('c.pth', 'r.pkl', 'v', True)


def test_launcher_scripts_say_how_to_call_them():
    for script, usage in (('tools/dist_train.sh', 'CONFIG GPUS'),
                          ('tools/dist_test.sh', 'CONFIG CHECKPOINT GPUS'),
                          ('tools/run_demo.sh', '{det,seg,cls}')):
        result = run_tool([osp.join(ROOT, script)])
        assert result.returncode == 2 and usage in result.stderr, script


@pytest.mark.parametrize('script,args,tail', [
    ('slurm_train.sh', ['part', 'job', DET, 'work_dirs/x', '--amp'], [
        'tools/train.py', DET, '--work-dir=work_dirs/x', '--launcher=slurm',
        '--amp'
    ]),
    ('slurm_test.sh', ['part', 'job', DET, 'ckpt.pth', '--out', 'r.pkl'],
     ['tools/test.py', DET, 'ckpt.pth', '--launcher=slurm', '--out', 'r.pkl']),
])
def test_slurm_scripts_build_mmdetections_srun_line(script, args, tail,
                                                    tmp_path):
    """No Slurm here: a stand-in ``srun`` on PATH records its arguments."""
    srun = tmp_path / 'srun'
    srun.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    srun.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f'{tmp_path}:{os.environ["PATH"]}',
        GPUS='16',
        PYTHON='python3')
    result = run_tool([osp.join(ROOT, 'tools', script), *args], env=env)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.split('\n')[:-1]
    assert argv[:8] == [
        '-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1'
    ]
    assert argv[8:10] == ['python3', '-u']
    assert argv[10].endswith(tail[0]) and argv[11:] == tail[1:]


@pytest.mark.slow
def test_dist_train_two_processes_on_cpu(tiny_demo, tmp_path):
    """tools/dist_train.sh 2 on a machine without CUDA: torchrun starts two
    ranks that train over gloo; rank 0 alone writes the checkpoint."""
    work_dir = tmp_path / 'dist'
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1')
    result = run_tool([
        osp.join(ROOT, 'tools', 'dist_train.sh'), DET, '2', '--work-dir',
        str(work_dir), '--cfg-options', *coco_options(tiny_demo / 'coco'),
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'
    ],
                      env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert '[rank 0/2] done' in out and '[rank 1/2] done' in out
    assert sorted(p for p in os.listdir(work_dir) if p.endswith('.pth')) \
        == ['epoch_1.pth']
    log = open(
        next(
            osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
            if f.endswith('.log'))).read()
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's name for the world size
    # 4 training images x RepeatDataset(3) over 2 ranks x 2 images
    assert 'Epoch(train) [1][3/3]' in log
    assert 'coco/bbox_mAP' in log  # the distributed evaluation ran


def _cls_options(root, max_epochs):
    data = [
        f'{k}_dataloader.dataset.data_root={root / "imagenet"}'
        for k in ('train', 'val', 'test')
    ]
    return data + [
        'train_dataloader.batch_size=8', f'train_cfg.max_epochs={max_epochs}',
        f'train_cfg.val_interval={max_epochs}',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1'
    ]


def _read(path):
    return open(path).read().strip() if osp.isfile(path) else None


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(tiny_demo, tmp_path):
    """SIGKILL a demo run after its second checkpoint; --resume continues
    from the last checkpoint's iteration to the end."""
    work_dir = tmp_path / 'resume'
    max_epochs = 6  # 32 images / 8 = 4 iterations per epoch
    cmd = [
        sys.executable, 'tools/train.py', CLS, '--work-dir',
        str(work_dir), '--cfg-options', *_cls_options(tiny_demo, max_epochs)
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True)
    last = osp.join(work_dir, 'last_checkpoint')
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            ckpt = _read(last)
            if ckpt and not ckpt.endswith('epoch_1.pth'):
                break
            time.sleep(0.05)
        assert proc.poll() is None, 'the run ended before it could be killed'
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its data workers
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = _read(last)
    epoch = int(osp.basename(killed_at)[len('epoch_'):-len('.pth')])
    assert epoch < max_epochs
    assert not osp.exists(osp.join(work_dir, f'epoch_{max_epochs}.pth'))

    result = run_tool([
        'tools/train.py', CLS, '--work-dir',
        str(work_dir), '--resume', '--cfg-options',
        *_cls_options(tiny_demo, max_epochs)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    logs = sorted(
        osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
        if f.endswith('.log'))
    resumed = open(logs[-1]).read()
    assert f'resumed epoch: {epoch}, iter: {epoch * 4}' in resumed
    assert f'Load checkpoint from {killed_at}' in resumed
    assert osp.exists(osp.join(work_dir, f'epoch_{max_epochs}.pth'))
    # the resumed run logged iterations after the checkpoint only
    scalars = sorted(
        osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
        if f == 'scalars.json')
    steps = [
        json.loads(line)['step'] for line in open(scalars[-1])
        if '"loss"' in line
    ]
    assert steps[0] == epoch * 4 + 1 and steps[-1] == max_epochs * 4
