# The DenseResNet paper's ImageNet-1k recipe (seed 003, section 3.1), with
# what the paper leaves open taken from the 2020 code behind it
# (github.com/takedarts/DenseResNet, src/utils/*.py, src/train.py):
#
# paper:  batch 64, Nesterov SGD (momentum 0.9), cosine annealing of the lr;
#         ResNet-34 / DenseResNet-34: 160x160 training crops, lr 0.025,
#         weight decay 1e-4 (the MobileNetV2 configs change these to 224,
#         0.0125, 4e-5); standard augmentation (resize / crop / flip); test:
#         short side resized to 256, centre crop 224 (single crop).
# 2020 code: 300 epochs, 5 linear warm-up epochs, lr stepped once per
#         epoch, cosine to 0 over the 300 epochs; no weight decay on norm
#         weights and conv / linear biases (train-bdecay False);
#         RandomResizedCrop + flip + ColorJitter 0.4 + PCA lighting 0.1;
#         plain cross-entropy (no CutMix / Mixup / label smoothing);
#         kaiming (fan_out) convs, every BN weight 1 (no zero-init).
#
# Configs that inherit this set model.backbone and model.head.in_channels.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

# PCA lighting (AlexNet) of ImageNet RGB, eigenvalues on the 0-255 scale,
# eigenvectors in BGR order (mmcv loads BGR images).
lighting_eigval = [55.4625, 4.7940, 1.1475]
lighting_eigvec = [[-0.5836, -0.6948, 0.4203],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5675, 0.7192, 0.4009]]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=160),
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
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.025, momentum=0.9, nesterov=True, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
# The 2020 code: lr(e) = (e + 1) / 6 * lr for the epochs e < 5, then
# lr * (1 + cos(pi * e / 300)) / 2, stepped per epoch. The two chained
# (multiplicative) schedulers below give that within 0.05 % during warm-up
# and exactly afterwards.
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 6, by_epoch=True, begin=0, end=6),
    dict(
        type='CosineAnnealingLR',
        T_max=300,
        eta_min=0.,
        by_epoch=True,
        begin=0,
        end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=5)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5,
                                     max_keep_ckpts=3, save_best='auto'))
# The paper trained with 64 images per iteration; with more GPUs, add
# --auto-scale-lr (linear scaling from 64).
auto_scale_lr = dict(enable=False, base_batch_size=64)
