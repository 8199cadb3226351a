# CPU demo of skipresnet50_8xb128-cos300e_in1k.py: the authors' ImageNet recipe
# (SGD nesterov, warm-up + cosine, no weight decay on norms / biases, CutMix,
# RandomResizedCrop + flip + colour jitter + PCA lighting), on the embedded
# ImageNet-layout demo set (tools/misc/make_demo_data.py), changed only where a
# 2-core CPU needs it:
# - SkipResNet-18 at half width;
# - 80x80 images, 64x64 crops (test: short side 73 = 64 / 0.875, centre crop);
# - 32 images per batch at lr 0.1 (linear scaling of the recipe's 0.4 per
#   1024 images would give 0.0125: too slow for 780 iterations from scratch),
#   crops of at least 25 % of the image, 4 classes, 60 epochs.
#   bash tools/run_demo.sh cls
_base_ = '../skipresnet/skipresnet50_8xb128-cos300e_in1k.py'

data_root = 'data/demo/imagenet'
metainfo = dict(classes=('person', 'ball', 'box', 'signboard'))
num_classes = 4

model = dict(
    # stem as wide as the first stage (MMPretrain's default stem is 64)
    backbone=dict(depth=18, base_channels=32, stem_channels=32),
    head=dict(in_channels=256, num_classes=num_classes, topk=(1, )))
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # one object per 80 px image: crops of >= 25 % of it (stock: 8 %)
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.25, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='Lighting',
        eigval=_base_.lighting_eigval,
        eigvec=_base_.lighting_eigvec,
        alphastd=0.1,
        to_rgb=False),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 60
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=2,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=10, max_keep_ckpts=2, save_best=None))
