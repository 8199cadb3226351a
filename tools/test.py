# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmgate.
"""Test (and evaluate) a detector, segmentor or classifier checkpoint.

MMDetection's ``tools/test.py`` command line, for any OpenMMLab config::

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl]
    tools/dist_test.sh CONFIG CHECKPOINT 8

The logic is :func:`mmgate.apis.test` (see there).
"""
from mmgate.apis.testing import main

if __name__ == '__main__':
    main()
