"""Helpers of the tools tests (run tools/ as a user would)."""
import os.path as osp
import socket
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def coco_options(root):
    """--cfg-options pointing the det demo config at a COCO-format root."""
    root = str(root).rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    return [f'train_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_tool(args, timeout=600, env=None):
    """Run a tools/ command from the repository root; return the result."""
    cmd = args if args[0].endswith('.sh') else [sys.executable, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
