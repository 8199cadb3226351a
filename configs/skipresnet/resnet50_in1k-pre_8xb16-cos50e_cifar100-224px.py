# Fine-tuning ResNet-50 from torchvision's ImageNet weights on CIFAR-100
# (MMPretrain's CIFAR100 dataset, data/cifar100). Not a recipe of the paper:
# a plain transfer-learning one. The 32x32 images are upsampled to 224, the
# resolution the weights were trained at; SGD nesterov lr 0.01 for 128 images
# (8 GPUs x 16), 1 warm-up epoch, cosine over 50 epochs, weight decay 5e-4 on
# weights only, CutMix as in pre-training; ImageNet's mean / std.
# The Skip variant is skipresnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py.
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0, use_soft=True)),
    train_cfg=dict(augments=dict(type='CutMix', alpha=1.0)))

# the backbone was trained on ImageNet-normalised RGB
data_preprocessor = dict(
    num_classes=100,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=False)  # CIFAR images load as RGB
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=224),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

max_epochs = 50
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(
        type='mmgate.CheckpointHook',
        interval=5,
        max_keep_ckpts=2,
        save_best='auto'))
auto_scale_lr = dict(enable=False, base_batch_size=128)
