"""Fine-tune a gated backbone on your own dataset folder, in one command.

    python tools/finetune.py DATA_DIR --task det|seg|cls \\
        [--backbone skipresnet50] [--recipe cascade-mask-rcnn|mask-rcnn|
        retinanet|upernet|linear] [--weights PATH_OR_URL] [--epochs N]
        [--gpus N] [--seeds K --compare base] [--work-dir DIR] [--resume]
        [--no-train] [--cfg-options KEY=VALUE ...]

Reads the classes from the data, writes a config that inherits the mmgate
recipe (printed: ``config: <path>``; yours to edit and rerun), trains it with
tools/train.py, tests it with tools/test.py and writes the benchmark report
of the runs. ``--seeds K --compare base`` trains the gated model and its
plain twin with seeds 0 .. K-1 and compares them seed by seed. The same
command is installed as ``mmgate-finetune``; the logic is in
mmgate/finetune.py.
"""
import os.path as osp
import sys

# a checkout that is not installed: import mmgate from it
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmgate.finetune import main  # noqa: E402

if __name__ == '__main__':
    main()
