# Cascade Mask R-CNN + FPN with DenseResNet-50 (N = 4), COCO instance
# segmentation: the stock MMDetection multi-scale 3x recipe
# (mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py: 8 GPUs x 2
# images, SGD lr 0.02, 36 COCO epochs) with the backbone swapped.
#
# No DenseResNet-50 ImageNet weights are published: pre-train it with
# dense-resnet50-n4_1xb64-cos300e_in1k-160px.py and point `pretrained` at
# that checkpoint (its backbone.* keys are loaded strictly):
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/epoch_300.pth
# pad_mode must be the one the backbone was pre-trained with.
#
# As in the stock recipe the stem and stage 1 are frozen and every BN keeps
# its ImageNet statistics (norm_eval=True), the gates' BNs included (they see
# one pooled vector per image: 2 per GPU would be a noisy batch).
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py'

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

pretrained = ('work_dirs/dense-resnet50-n4_1xb64-cos300e_in1k-160px/'
              'epoch_300.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmgate.DenseResNet',
        depth=50,
        num_connections=4,
        pad_mode='masked',
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

# the stock ms-3x instance base evaluates boxes only
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=16)
