import os

# Tests are many small CPU workloads: one intra-op thread per process avoids
# OpenMP spin-waiting against other processes (dist tests, workers), and
# PASSIVE must be set before torch loads its OpenMP runtime.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: long CPU runs (demo, launch, all configs)')
