# ResNet-50 (3x3 stem) on CIFAR-10 with FLGC, G = 4 learnt groups in every
# bottleneck 3x3, with feature duplication (mmgate's own extension of FLGC,
# Wang et al., CVPR 2019; no published numbers): a channel outside a group is
# also read by it when its affinity (softmax probability) to the group exceeds
# the mean of the group members' top-3. With these defaults the rule seldom
# fires; the LearnableGroupStatsHook logs how often it does, and
# dup_source='logit' / dup_reference='column' / dup_topk change the statistic.
_base_ = './_base_/resnet50-cifar_flgc_8xb16_cifar10.py'

model = dict(backbone=dict(dcn=dict(num_groups=4, duplicate=True)))
