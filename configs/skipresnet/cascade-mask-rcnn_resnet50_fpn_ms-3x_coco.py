# Cascade Mask R-CNN + FPN, ResNet-50 baseline, COCO instance segmentation.
#
# The stock MMDetection multi-scale 3x recipe, unchanged: 8 GPUs x 2 images,
# SGD lr 0.02, shorter side sampled from 640-800, RepeatDataset(times=3) x 12
# epochs (= 36 COCO epochs), lr steps at 9 and 11 (27 / 33 COCO epochs).
# Backbone: MMDetection's ResNet with torchvision's ImageNet weights.
#
# Paper (Cascade Mask R-CNN, ResNet-50): 44.81 box / 38.98 mask mAP; stock
# MMDetection ms-3x reaches 44.3 / 38.5. The Skip variant of this file is
# cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py.
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py'

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

# The stock ms-3x instance base (common/ms_3x_coco-instance.py) evaluates
# boxes only; an instance-segmentation run reports masks too.
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# lr 0.02 is for 16 images per iteration (8 GPUs x 2). On another number of
# GPUs, add --auto-scale-lr to tools/train.py (linear scaling rule).
auto_scale_lr = dict(enable=False, base_batch_size=16)
