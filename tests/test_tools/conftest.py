import pytest

from mmgate.datasets import (make_ade20k_demo, make_coco_demo,
                             make_imagenet_demo)


@pytest.fixture(scope='session')
def tiny_demo(tmp_path_factory):
    """Tiny copies of the three demo sets (a few images each)."""
    root = tmp_path_factory.mktemp('demo')
    make_coco_demo(str(root / 'coco'), num_train=4, num_val=2)
    make_ade20k_demo(str(root / 'ade'), num_train=3, num_val=2)
    make_imagenet_demo(str(root / 'imagenet'), num_train=8, num_val=2)
    return root
