# The authors' ImageNet recipe for the ResNet / ResNeXt families, base and
# Skip alike (github.com/takedarts/skipresnet, configs/train/imagenet/*.txt):
# batch 1024 (8 GPUs x 128), 300 epochs, SGD nesterov momentum 0.9, lr 0.4,
# 5 linear warm-up epochs then cosine to 0, weight decay 1e-4 on weights only
# (not on norm weights, biases or any other 1-D parameter), CutMix alpha 1.0
# on every batch, RandomResizedCrop 224 + flip + ColorJitter 0.4 + PCA
# lighting; test: resize the short side to 256 (= 224 / 0.875), centre crop.
#
# The configs that inherit this add the backbone and the head's in_channels.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

# ---- model: ImageClassifier(backbone, GAP, linear head) + CutMix ----------
model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        # CutMix mixes the labels: the loss takes soft targets
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True),
        topk=(1, 5)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))

# ---- data -----------------------------------------------------------------
# PCA lighting (AlexNet) eigen-decomposition of ImageNet RGB, in BGR order.
lighting_eigval = [55.4625, 4.7940, 1.1475]
lighting_eigvec = [[-0.5836, -0.6948, 0.4203],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5675, 0.7192, 0.4009]]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='Lighting',
        eigval=lighting_eigval,
        eigvec=lighting_eigvec,
        alphastd=0.1,
        to_rgb=False),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# ---- schedule ---------------------------------------------------------------
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.4, momentum=0.9, nesterov=True, weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))
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
# lr 0.4 is for 1024 images per iteration (8 GPUs x 128).
auto_scale_lr = dict(enable=False, base_batch_size=1024)
