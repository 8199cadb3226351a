import os

import pytest
import torch

# Tests are CPU-only and must not compete with each other for the 2 cores.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
