# CPU demo of upernet_skipresnet50_8xb2-160k_ade20k-512x512.py: the same
# UPerNet recipe (SGD, poly lr, auxiliary FCN head, random resize 0.5-2x + crop
# + flip + photometric distortion), on the embedded ADE20k-layout demo set
# (tools/misc/make_demo_data.py), changed only where a 2-core CPU needs it:
# - backbone SkipResNet-18 at half width, trained from scratch (no pretrained
#   weights);
# - decode / auxiliary heads narrowed (512 -> 64, 256 -> 32 channels);
# - 160x120 images, 96x96 crops instead of 512x512;
# - a short schedule and the 5 ADE20k classes the demo set holds (the
#   annotation PNGs keep ADE20k's class ids; MMSegmentation maps them).
#   bash tools/run_demo.sh seg
_base_ = '../skipresnet/upernet_skipresnet50_8xb2-160k_ade20k-512x512.py'

data_root = 'data/demo/ade/ADEChallengeData2016'
metainfo = dict(classes=('wall', 'person', 'ball', 'box', 'signboard'))
num_classes = 5
crop_size = (96, 96)

model = dict(
    data_preprocessor=dict(size=crop_size),
    # stem as wide as the first stage (MMSegmentation's default stem is 64)
    backbone=dict(depth=18, base_channels=32, stem_channels=32,
                  init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 128, 256], channels=64,
        num_classes=num_classes),
    auxiliary_head=dict(
        in_channels=128, channels=32, num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(640, 120),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(640, 120), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 2000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2))
