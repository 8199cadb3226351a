# ResNet-50 with a 3x3 stride-1 stem (no stem pooling) on CIFAR-10, every
# bottleneck 3x3 a fully learnable group convolution (FLGC: Wang et al.,
# "Fully Learnable Group Convolution for Acceleration of Deep Neural
# Networks", CVPR 2019) with G learnt groups, optionally with feature
# duplication (mmgate's own extension: important channels are shared by
# several groups; no published numbers). Which convs carry FLGC is our
# choice: the 3x3 (ResNeXt's grouped conv) does here, put through the
# backbone's dcn= slot. Set the groups / duplication in the
# configs that inherit this.
# Recipe: MMPretrain's CIFAR-10 ResNet one (8 GPUs x 16, SGD lr 0.1, weight
# decay 1e-4, 200 epochs, lr x0.1 at 100/150), with which its plain
# ResNet-50 (mmpretrain::resnet/resnet50_8xb16_cifar10.py) reaches 95.55 %.
_base_ = [
    'mmpretrain::_base_/models/resnet50_cifar.py',
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
]

# mmgate's Runner: safe checkpoint reading, atomic checkpoints with the
# random generators' states, a stop at the first non-finite loss, and
# distributed runs without CUDA (mmgate.engine.Runner).
runner_type = 'mmgate.Runner'
custom_imports = dict(imports=['mmgate.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmgate.PriorPoolResNet',
        depth=50,
        pool_cfg=None,
        cifar_stem=True,
        out_indices=(3, ),
        norm_eval=False,
        dcn=dict(
            type='mmgate.LearnableGroupConv2d',
            num_groups=4,
            duplicate=False,
            # duplication threshold: mean of the top-3 member probabilities
            dup_topk=3,
            dup_source='prob',
            dup_reference='members'),
        stage_with_dcn=(True, True, True, True)))
# the assignment logits S, T must not decay
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'group_logits': dict(decay_mult=0.)}))
# log the duplicated channels of every FLGC layer (total in each log line,
# per layer every 500 iterations)
custom_hooks = [dict(type='mmgate.LearnableGroupStatsHook', interval=500)]
# lr 0.1 is for 128 images per iteration (8 GPUs x 16).
auto_scale_lr = dict(enable=False, base_batch_size=128)
