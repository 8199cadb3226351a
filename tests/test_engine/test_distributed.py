"""Distributed runs that lose a process: ranks stop with their launcher, and
a 2-process run killed three times (a rank, the launcher, the other rank)
and resumed each time ends exactly as an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO_ROOT, coco_options, load_tool

CHILD = '''
import sys, time
from mmgate.engine.dist import stop_with_launcher
if sys.argv[1] == 'guard':
    assert stop_with_launcher()
open(sys.argv[2], 'w').close()
time.sleep(120)
'''


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _orphan_survives(mode, tmp_path):
    """A launcher (sh) starts a child, then the launcher is SIGKILLed:
    does the child live on?"""
    ready = tmp_path / f'{mode}.ready'
    launcher = subprocess.Popen([
        'sh', '-c', f'"{sys.executable}" -c "$0" {mode} {ready} & echo $!; '
        'wait', CHILD
    ],
                                stdout=subprocess.PIPE,
                                text=True,
                                cwd=REPO_ROOT,
                                start_new_session=True)
    child = int(launcher.stdout.readline())
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert ready.exists(), 'the child did not start'
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    time.sleep(2)
    survived = _alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


@pytest.mark.skipif(
    not sys.platform.startswith('linux'),
    reason='prctl(PR_SET_PDEATHSIG) is Linux only')
def test_a_rank_stops_when_its_launcher_is_killed(tmp_path):
    assert not _orphan_survives('guard', tmp_path)


@pytest.mark.skipif(
    not sys.platform.startswith('linux'),
    reason='prctl(PR_SET_PDEATHSIG) is Linux only')
def test_without_the_guard_the_orphan_trains_on(tmp_path):
    """Control: the same child without the guard outlives its launcher."""
    assert _orphan_survives('plain', tmp_path)


@pytest.mark.slow
def test_killed_three_times_and_resumed_ends_as_uninterrupted(
        tiny_demo, tmp_path):
    soak = load_tool('misc/soak_resume')
    args = soak.parse_args([
        '--epochs', '4', '--kills', '3', '--kill-delay', '0.2', '1.0',
        '--skip-test', '--work-dir',
        str(tmp_path / 'soak'), '--cfg-options',
        *coco_options(tiny_demo / 'coco')
    ])
    summary = soak.soak(args)
    assert [k['kill']
            for k in summary['kills']] == ['rank 1', 'the launcher', 'rank 0']
    it = summary['iterations']
    # 4 images x RepeatDataset(3) over 2 ranks x 2 images: 3 an epoch
    assert it['compared'] == it['uninterrupted'] == 12
    assert it['equal'] == 12 and it['max_abs_difference'] == 0
    assert summary['final_weights_max_abs_difference'] == 0
    assert summary['same']
