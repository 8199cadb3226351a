# CPU demo of cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py: the same
# Cascade Mask R-CNN recipe, on the embedded COCO-format demo set
# (tools/misc/make_demo_data.py), changed only where a 2-core CPU needs it:
# - backbone SkipResNet-18 at half width, trained from scratch (no pretrained
#   weights, so its BNs train: frozen_stages=-1, norm_eval=False);
# - FPN / RPN / RoI heads narrowed (256 -> 64 channels, 1024 -> 256 fc),
#   128 instead of 512 sampled RoIs, fewer proposals;
# - 160x120 images (the stock 0.8-1.0 multi-scale range: short side 96-120);
# - a short schedule (RepeatDataset x3 as in ms-3x, 2 epochs = 480
#   iterations, short warm-up) and 4 classes.
#   bash tools/run_demo.sh det
_base_ = '../skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py'

data_root = 'data/demo/coco/'
metainfo = dict(classes=('person', 'ball', 'box', 'signboard'))
num_classes = 4
width = 64  # neck / head channels (stock: 256)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=[
            dict(head, in_channels=width, fc_out_channels=256,
                 num_classes=num_classes)
            for head in _base_.model.roi_head.bbox_head
        ],
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(
            in_channels=width, conv_out_channels=width,
            num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=[
            dict(stage, sampler=dict(stage.sampler, num=128))
            for stage in _base_.model.train_cfg.rcnn
        ]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(160, 96), (160, 120)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            filter_cfg=dict(filter_empty_gt=True, min_size=8),
            pipeline=train_pipeline)))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 2  # x RepeatDataset(3) x 160 images / 2 = 480 iterations
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    # the stock steps at 9/12 and 11/12 of the schedule, in iterations
    dict(type='MultiStepLR', begin=0, end=480, by_epoch=False,
         milestones=[360, 440], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=1, max_keep_ckpts=2))
