# Dense-ResNet-110 (CIFAR layout: 3x3 stem, 3 x 18 basic blocks, 16/32/64
# channels), N = 4, CIFAR-100 with the paper's recipe (Takeda, MIRU 2020,
# section 3.1): batch 64, Nesterov SGD momentum 0.9, lr 0.05, weight decay
# 5e-4, cosine annealing, random crop + flip. From the 2020 code
# (config/cifar/resnet-110.txt of Aug. 2020): 300 epochs, 5 warm-up epochs,
# gate reduction 2, no decay on norm weights / biases, reflect padding for the
# crop, no CutMix.
# 2.23M parameters (ResNet-110: 1.74M); paper: 22.62 % top-1 error
# (ResNet-110: 24.65 %).
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
        type='mmgate.DenseResNetCIFAR',
        depth=110,
        num_connections=4,
        pad_mode='paper',
        gate_reduction=2,
        norm_eval=False,
        zero_init_residual=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=100,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# the 2020 code's CIFAR-100 normalisation (0-255 scale, RGB)
data_preprocessor = dict(
    num_classes=100,
    mean=[129.311, 124.058, 112.430],
    std=[68.162, 65.382, 70.431],
    to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
# warm-up (e + 1) / 6 for e < 5, then cosine over 300 epochs, per epoch
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
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=64)
