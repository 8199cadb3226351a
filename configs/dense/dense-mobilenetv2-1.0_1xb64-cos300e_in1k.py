# Dense-MobileNetV2-1.0 (N = 4, gates on all 17 blocks, reduction 4, ReLU6),
# ImageNet-1k with the paper's MobileNetV2 recipe: 224px crops, batch 64,
# Nesterov SGD lr 0.0125, weight decay 4e-5, cosine (the rest as in
# _base_/in1k_paper_recipe.py). pad_mode='paper' as the 2020 code.
# 4.08M parameters (MobileNetV2: 3.50M); paper: 26.60 % top-1 error
# (MobileNetV2 with the same recipe: 27.70 %,
# mobilenetv2-1.0_1xb64-cos300e_in1k.py).
_base_ = './_base_/in1k_paper_recipe.py'

model = dict(
    backbone=dict(
        type='mmgate.DenseMobileNetV2',
        widen_factor=1.0,
        num_connections=4,
        pad_mode='paper',
        gate_reduction=4,
        out_indices=(7, ),
        norm_eval=False),
    head=dict(in_channels=1280))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.0125, weight_decay=4e-5))
