"""Kill a distributed run again and again, resume it each time, and compare
it with an uninterrupted run of the same seed.

    python tools/misc/soak_resume.py                        # det demo, 2 ranks
    python tools/misc/soak_resume.py --kills 3 --epochs 4 --work-dir w/soak

Both runs use ``tools/dist_train.sh CONFIG GPUS`` (gloo on a machine without
CUDA) with the same seed and ``--cfg-options``. The interrupted one is
killed ``--kills`` times with SIGKILL, at a seeded random moment of the
epoch after a new checkpoint: in turn rank 1 (torchrun then stops the
others), the launcher (torchrun; mmgate's Runner makes its ranks stop with
it) and rank 0; each time it is resumed with ``--resume``. At the end
the training losses of every iteration (rank 0's log, ``default_hooks.logger
.interval=1``), the weights of the last checkpoints and the metrics of
``tools/dist_test.sh`` on them are compared; the summary is printed and
written to ``WORK_DIR/soak_summary.json``. Exit status 0 when the losses,
weights and metrics are equal.

The data loaders run in the main process (``num_workers=0``): MMEngine
seeds persistent workers once per run, so their augmentations after a
resume would differ from an uninterrupted run's (mmgate's Runner restores
the main process's generators of every rank).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DET = 'configs/demo/cascade_rcnn_skipresnet18_demo.py'
KILLS = ('rank 1', 'the launcher', 'rank 0')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=DET)
    parser.add_argument(
        '--gpus', type=int, default=2, help='processes (default 2)')
    parser.add_argument('--kills', type=int, default=3)
    parser.add_argument(
        '--epochs',
        type=int,
        default=4,
        help='train_cfg.max_epochs (a checkpoint per epoch)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--kill-delay',
        type=float,
        nargs=2,
        default=(1, 5),
        metavar=('MIN', 'MAX'),
        help='seconds after a new checkpoint within which '
        'a kill lands (uniform; default 1 5)')
    parser.add_argument('--work-dir', default='work_dirs/soak_resume')
    parser.add_argument(
        '--timeout', type=float, default=3600, help='seconds for each launch')
    parser.add_argument(
        '--skip-test',
        action='store_true',
        help='compare losses and final weights only, not '
        'the metrics of tools/dist_test.sh')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='more options for both runs (KEY=VALUE)')
    args = parser.parse_args(argv)
    if args.kills >= args.epochs:
        parser.error('--kills must be smaller than --epochs (one kill per '
                     'epoch after the first checkpoint)')
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _options(args) -> List[str]:
    return [
        f'randomness.seed={args.seed}', f'train_cfg.max_epochs={args.epochs}',
        f'train_cfg.val_interval={args.epochs}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=2', *args.cfg_options
    ]


def _launch(args, work_dir: str, resume: bool, port: int, log):
    cmd = [
        osp.join(ROOT, 'tools', 'dist_train.sh'), args.config,
        str(args.gpus), '--work-dir', work_dir
    ]
    if resume:
        cmd.append('--resume')
    cmd += ['--cfg-options', *_options(args)]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(port))
    env.setdefault('OMP_NUM_THREADS', '1')
    print('+ ' + ' '.join(cmd), flush=True)
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True)


def _rank_pid(port: int, rank: int) -> Optional[int]:
    want = {f'RANK={rank}'.encode(), f'MASTER_PORT={port}'.encode()}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if want <= set(f.read().split(b'\0')):
                    return int(pid)
        except OSError:
            continue
    return None


def _last_checkpoint(work_dir: str) -> Optional[str]:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def _kill(proc, port: int, how: str) -> None:
    rank0 = _rank_pid(port, 0)
    if rank0 is None:
        raise RuntimeError(f'rank 0 of port {port} is not running')
    if how == 'the launcher':  # torchrun, the ranks' parent
        with open(f'/proc/{rank0}/stat') as f:
            pid = int(f.read().rsplit(')', 1)[1].split()[1])
    else:
        pid = _rank_pid(port, int(how.split()[-1]))
        if pid is None:
            raise RuntimeError(f'{how} of port {port} is not running')
    os.kill(pid, signal.SIGKILL)
    try:
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:  # torchrun did not stop the others
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # nothing of the job may outlive it (a rank writing into the work dir)
    deadline = time.time() + 60
    while _rank_pid(port, 0) or _rank_pid(port, 1):
        if time.time() > deadline:
            raise RuntimeError(f'ranks of port {port} outlived the kill')
        time.sleep(0.2)


def _run_to_end(args, work_dir, resume, log) -> float:
    start = time.time()
    proc = _launch(args, work_dir, resume, _free_port(), log)
    if proc.wait(timeout=args.timeout) != 0:
        raise RuntimeError(f'the run in {work_dir} failed (exit '
                           f'{proc.returncode}); see its launch.log')
    return time.time() - start


def _interrupted(args, work_dir, log) -> List[dict]:
    """Train with ``--kills`` kills; the record of each kill."""
    rng = random.Random(args.seed)
    kills = []
    for k in range(args.kills):
        port = _free_port()
        before = _last_checkpoint(work_dir)
        proc = _launch(args, work_dir, resume=k > 0, port=port, log=log)
        deadline = time.time() + args.timeout
        # wait for a new checkpoint, then a random moment of the next epoch
        while _last_checkpoint(work_dir) in (None, before):
            if proc.poll() is not None:
                raise RuntimeError(f'launch {k + 1} ended before its kill '
                                   f'(exit {proc.returncode})')
            if time.time() > deadline:
                raise RuntimeError(f'launch {k + 1}: no new checkpoint')
            time.sleep(0.1)
        time.sleep(rng.uniform(*args.kill_delay))
        how = KILLS[k % len(KILLS)]
        at = _last_checkpoint(work_dir)
        _kill(proc, port, how)
        kills.append(
            dict(kill=how, after=osp.basename(at), exit=proc.returncode))
        print(
            f'killed {how} after {osp.basename(at)} (launcher exit '
            f'{proc.returncode})',
            flush=True)
    _run_to_end(args, work_dir, True, log)
    return kills


def losses(work_dir: str) -> Dict[int, float]:
    """{iteration: loss} of rank 0's logs; an iteration logged by several
    launches (trained again after a kill) takes the latest launch's."""
    out = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if 'loss' in row and 'step' in row:
                    out[row['step']] = row['loss']
    return out


def _test(args, work_dir: str, log) -> dict:
    ckpt = _last_checkpoint(work_dir)
    test_dir = osp.join(work_dir, 'test')
    cmd = [
        osp.join(ROOT, 'tools', 'dist_test.sh'), args.config, ckpt,
        str(args.gpus), '--work-dir', test_dir, '--cfg-options',
        f'randomness.seed={args.seed}', *args.cfg_options
    ]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()))
    env.setdefault('OMP_NUM_THREADS', '1')
    print('+ ' + ' '.join(cmd), flush=True)
    if subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT).returncode != 0:
        raise RuntimeError(f'testing {ckpt} failed; see launch.log')
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    with open(logs[-1]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def weight_difference(a: str, b: str) -> float:
    """The largest absolute difference between the weights (and buffers) of
    two checkpoints."""
    from mmgate.fileio import read_local_checkpoint
    sa = read_local_checkpoint(a, trusted=True)['state_dict']
    sb = read_local_checkpoint(b, trusted=True)['state_dict']
    if sa.keys() != sb.keys():
        return math.inf
    return max((float((sa[k].double() - sb[k].double()).abs().max())
                for k in sa if sa[k].numel()),
               default=0.)


def soak(args) -> dict:
    """Both runs, their comparison (see the module docstring)."""
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    plain, broken = (
        osp.join(work_dir, d) for d in ('uninterrupted', 'interrupted'))
    with open(osp.join(work_dir, 'launch.log'), 'a') as log:
        start = time.time()
        _run_to_end(args, plain, False, log)
        plain_s = time.time() - start
        start = time.time()
        kills = _interrupted(args, broken, log)
        broken_s = time.time() - start
        metrics = [{} if args.skip_test else _test(args, d, log)
                   for d in (plain, broken)]
    weights = weight_difference(
        _last_checkpoint(plain), _last_checkpoint(broken))
    a, b = losses(plain), losses(broken)
    common = sorted(set(a) & set(b))
    diffs = [abs(a[i] - b[i]) for i in common]
    keys = sorted(
        k for k in metrics[0]
        if isinstance(metrics[0][k], float) and k not in ('time', 'data_time'))
    summary = dict(
        config=args.config,
        gpus=args.gpus,
        seed=args.seed,
        epochs=args.epochs,
        kills=kills,
        iterations=dict(
            uninterrupted=len(a),
            interrupted=len(b),
            compared=len(common),
            equal=sum(d == 0 for d in diffs),
            max_abs_difference=max(diffs) if diffs else None),
        final_loss=dict(
            uninterrupted=a[max(a)] if a else None,
            interrupted=b[max(b)] if b else None),
        final_weights_max_abs_difference=weights,
        metrics={
            k:
            dict(uninterrupted=metrics[0][k], interrupted=metrics[1].get(k))
            for k in keys
        },
        seconds=dict(
            uninterrupted=round(plain_s), interrupted=round(broken_s)))
    summary['same'] = bool(
        common and len(common) == len(a) == len(b) and max(diffs) == 0
        and weights == 0 and all(v['uninterrupted'] == v['interrupted']
                                 for v in summary['metrics'].values()))
    with open(osp.join(work_dir, 'soak_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    return summary


def _print(summary: dict) -> None:
    it = summary['iterations']
    print(f'\n==== soak: {summary["config"]}, {summary["gpus"]} processes, '
          f'{summary["epochs"]} epochs, seed {summary["seed"]} ====')
    for k in summary['kills']:
        print(f'kill {k["kill"]:>8} after {k["after"]}')
    print(f'iterations compared: {it["compared"]} (uninterrupted '
          f'{it["uninterrupted"]}, interrupted {it["interrupted"]}), '
          f'equal losses: {it["equal"]}, max |difference|: '
          f'{it["max_abs_difference"]}')
    fl = summary['final_loss']
    print(f'final loss: {fl["uninterrupted"]} / {fl["interrupted"]}')
    print('final weights, max |difference|: '
          f'{summary["final_weights_max_abs_difference"]}')
    for k, v in summary['metrics'].items():
        print(f'{k}: {v["uninterrupted"]} / {v["interrupted"]}')
    print(f'seconds: {summary["seconds"]}')
    print('the same' if summary['same'] else 'DIFFERENT')


def main(argv=None) -> int:
    summary = soak(parse_args(argv))
    _print(summary)
    return 0 if summary['same'] and not any(
        math.isnan(v['uninterrupted']) for v in summary['metrics'].values()
        if isinstance(v['uninterrupted'], float)) else 1


if __name__ == '__main__':
    os.chdir(ROOT)
    sys.exit(main())
