import os

# Tests are many small CPU workloads: one intra-op thread per process avoids
# OpenMP spin-waiting against other processes (dist tests, workers), and
# PASSIVE must be set before torch loads its OpenMP runtime.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Every test starts from seed 0 with one intra-op thread (tiny models;
    OpenMP threads spinning against other processes cost 10-100x on a
    shared 2-core machine), whatever the test before it set."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope='session')
def tiny_demo(tmp_path_factory):
    """Tiny copies of the three demo sets (a few images each)."""
    from mmgate.datasets import (make_ade20k_demo, make_coco_demo,
                                 make_imagenet_demo)
    root = tmp_path_factory.mktemp('demo')
    make_coco_demo(str(root / 'coco'), num_train=4, num_val=2)
    make_ade20k_demo(str(root / 'ade'), num_train=3, num_val=2)
    make_imagenet_demo(str(root / 'imagenet'), num_train=8, num_val=2)
    return root


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: long CPU runs (demo, launch, all configs)')
