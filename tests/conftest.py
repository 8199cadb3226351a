import os

# Tests are many small CPU workloads: one intra-op thread per process avoids
# OpenMP spin-waiting against other processes (dist tests, workers), and
# PASSIVE must be set before torch loads its OpenMP runtime.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
# Without CUDA, mmgate's Triton kernels are tested in Triton's interpreter,
# which Triton reads when it is first imported (tests/test_ops/
# test_triton_junction.py); with CUDA they run on the device.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Every test starts from seed 0 with one intra-op thread (tiny models;
    OpenMP threads spinning against other processes cost 10-100x on a
    shared 2-core machine), whatever the test before it set."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _default_scope_restored():
    """A test that installs an MMEngine default scope (``init_default_scope``,
    a Runner) does not leave it to the next: mmgate's backbones take their
    defaults from the current scope (``backbones/base.py``)."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


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


@pytest.fixture
def demo_copy(tiny_demo, tmp_path):
    """A private copy of the tiny demo sets, free to break."""
    import shutil
    dst = tmp_path / 'demo'
    shutil.copytree(tiny_demo, dst)
    return dst


def pytest_configure(config):
    config.addinivalue_line('markers',
                            'slow: long CPU runs (demo, launch, all configs)')
