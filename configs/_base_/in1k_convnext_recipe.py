# The authors' ImageNet recipe for the ConvNeXt family, base and Skip alike
# (github.com/takedarts/skipresnet, configs/train/imagenet/*ConvNeXt*.txt):
# batch 1024 (8 GPUs x 128), 300 epochs, AdamW lr 1e-3 betas (0.9, 0.999)
# eps 1e-8, weight decay 0.05 on weights only, 5 linear warm-up epochs then
# cosine to 0, gradient clipping at norm 1.0, Mixup 0.8 / CutMix 1.0 (one of
# the two per batch, p 0.5 each), RandAugment 2 ops magnitude 9 (std 0.5),
# random erasing 0.25, label smoothing 0.1; stochastic depth is set per model
# (T 0.1, S 0.4, B 0.5). Data pipeline: MMPretrain's ConvNeXt / Swin one.
#
# The configs that inherit this add the backbone and the head's in_channels.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

model = dict(
    type='ImageClassifier',
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=None),
    init_cfg=dict(
        type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

train_dataloader = dict(batch_size=128, num_workers=8,
                        persistent_workers=True)
val_dataloader = dict(batch_size=128, num_workers=8, persistent_workers=True)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.,
        by_epoch=True,
        begin=5,
        end=300,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    checkpoint=dict(
        type='mmgate.CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='auto'))
auto_scale_lr = dict(enable=False, base_batch_size=1024)
