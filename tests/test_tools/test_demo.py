"""The embedded CPU demo end to end (tools/misc/run_demo.py, the script
behind tools/run_demo.sh): data written, untrained model evaluated, trained
with tools/train.py, evaluated with tools/test.py; the loss falls and top-1
ends far above the untrained model's.

Slow (~3 min on 2 cores): the classification demo on its full demo set with
a third of its schedule. The full det / seg / cls demos are run by hand
(``bash tools/run_demo.sh det``); their numbers are in the README.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
EPOCHS = 20  # of the demo's 60 (the cosine schedule follows)


@pytest.mark.slow
def test_cls_demo_learns(tmp_path):
    work_dir = tmp_path / 'cls_demo'
    result = subprocess.run([
        sys.executable, 'tools/misc/run_demo.py', 'cls', '--data',
        str(tmp_path / 'data'), '--work-dir',
        str(work_dir), '--cfg-options', f'train_cfg.max_epochs={EPOCHS}',
        f'train_cfg.val_interval={EPOCHS}', f'param_scheduler.1.end={EPOCHS}'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=900,
                            env={
                                **os.environ, 'OMP_NUM_THREADS': '1'
                            })
    assert result.returncode == 0, \
        result.stdout[-2000:] + result.stderr[-3000:]
    assert '==== demo cls' in result.stdout
    summary = json.loads((work_dir / 'demo_summary.json').read_text())
    first, last = summary['loss_first'], summary['loss_last']
    assert last['iter'] > 0.75 * EPOCHS * 13  # 400 images / 32 a batch
    # CutMix (p=1) mixes every batch's labels: the loss floor is high
    assert last['loss'] < first['loss'] - 0.05, summary
    before = summary['untrained']['accuracy/top1']
    after = summary['trained']['accuracy/top1']
    # 4 balanced classes: the untrained model sits near 25 % (measured 19 %,
    # 49 % after these 20 epochs, 63 % after the demo's 60)
    assert after >= before + 20 and after >= 40, summary
