# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmgate.
"""Train a detector, segmentor or classifier from a config.

MMDetection's ``tools/train.py`` command line, for any OpenMMLab config (the
task comes from the config's ``default_scope``)::

    python tools/train.py \
        configs/skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py
    tools/dist_train.sh configs/cascade_rcnn_skipresnet50_coco.py 8
    python tools/train.py CONFIG --resume              # latest in work_dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth
    python tools/train.py CONFIG --cfg-options train_cfg.max_epochs=1

The logic is :func:`mmgate.apis.train` (see there).
"""
from mmgate.apis.training import main

if __name__ == '__main__':
    main()
