"""Fine-tune a gated backbone on your own dataset folder, in one command.

    python tools/finetune.py DATA_DIR --task det|seg|cls \\
        [--backbone skipresnet50] [--recipe NAME] [--weights PATH_OR_URL]
        [--epochs N] [--val-fraction F] [--gpus N] [--seeds K --compare base]
        [--work-dir DIR] [--resume] [--no-train] [--cfg-options KEY=VALUE]

Reads the data (COCO, Pascal VOC, YOLO; index / palette PNG, ADE20k;
ImageFolder, ImageNet lists), writes a config that inherits the mmgate
recipe the annotations fit (printed: ``config: <path>``; yours to edit and
rerun), trains, tests and writes the benchmark report of the runs. The same
command is installed as ``mmgate-finetune``; the logic is in
mmgate/finetune/.
"""
import os.path as osp
import sys

# a checkout that is not installed: import mmgate from it
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmgate.finetune import main  # noqa: E402

if __name__ == '__main__':
    main()
