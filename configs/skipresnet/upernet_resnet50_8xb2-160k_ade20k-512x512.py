# UPerNet, ResNet-50 baseline, ADE20k semantic segmentation, 512x512 crops,
# 160k iterations.
#
# The stock MMSegmentation recipe (mmseg::upernet/upernet_r50_4xb4-160k_ade20k-
# 512x512.py: SGD lr 0.01, poly decay, SyncBN, auxiliary FCN head) with two
# changes:
# - 8 GPUs x 2 images instead of the stock 4 GPUs x 4: the same 16 images per
#   iteration, so the learning rate and schedule stay as they are.
# - The backbone is the plain-stem ResNet-50 (7x7 stem conv) with torchvision's
#   ImageNet weights, the stem of the published SkipResNet weights, instead of
#   the stock deep-stem ResNetV1c with open-mmlab://resnet50_v1c.
#
# Paper (UPerNet, ResNet-50): 80.19 aAcc / 41.94 mIoU; stock MMSegmentation
# (ResNetV1c-50) reaches 42.05 mIoU. Skip variant:
# upernet_skipresnet50_8xb2-160k_ade20k-512x512.py.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

train_dataloader = dict(batch_size=2, num_workers=2)
