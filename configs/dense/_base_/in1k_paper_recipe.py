# The DenseResNet paper's ImageNet-1k recipe (Takeda, "Dense Residual
# Networks for Image Classification", MIRU 2020), with what the paper leaves
# open taken from the 2020 code behind it (github.com/takedarts/DenseResNet,
# src/utils/*.py, src/train.py):
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
# The data pipeline (ColorJitter, PCA lighting, test resize 256 / crop 224),
# the dataset and the runtime are those of the SkipResNet recipe,
# configs/_base_/in1k_resnet_recipe.py; what differs is set here: plain
# cross-entropy without CutMix, 160px crops, 64 images per batch, lr 0.025,
# decay on 1-D weights that are not norms or biases, the per-epoch warm-up /
# cosine, validation and checkpoints every 5 epochs.
#
# Configs that inherit this set model.backbone and model.head.in_channels.
_base_ = '../../_base_/in1k_resnet_recipe.py'

# no CutMix, hence no soft-target loss and no model.train_cfg
model = dict(
    _delete_=True,
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=160),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='Lighting',
        eigval={{_base_.lighting_eigval}},
        eigvec={{_base_.lighting_eigvec}},
        alphastd=0.1,
        to_rgb=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=0.025),
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0., bias_decay_mult=0.))
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
train_cfg = dict(val_interval=5)

default_hooks = dict(checkpoint=dict(interval=5))
# The paper trained with 64 images per iteration; with more GPUs, add
# --auto-scale-lr (linear scaling from 64).
auto_scale_lr = dict(base_batch_size=64)
