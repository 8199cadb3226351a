# UPerNet with DenseResNet-50 (N = 4), ADE20k, 512x512 crops, 160k
# iterations: the stock MMSegmentation recipe
# (mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py: 4 GPUs x 4 images,
# SGD lr 0.01, poly, SyncBN, auxiliary FCN head) with the backbone swapped.
#
# The backbone has the plain 7x7 stem of its ImageNet pre-training
# (dense-resnet50-n4_1xb64-cos300e_in1k-160px.py; no published weights):
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/epoch_300.pth
# MMSegmentation trains its BNs (norm_eval=False); the gates' norms use SyncBN
# too, so that their statistics come from all 16 images of an iteration.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

norm_cfg = dict(type='SyncBN', requires_grad=True)
pretrained = ('work_dirs/dense-resnet50-n4_1xb64-cos300e_in1k-160px/'
              'epoch_300.pth')
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmgate.DenseResNet',
        depth=50,
        num_connections=4,
        pad_mode='masked',
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        gate_norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
