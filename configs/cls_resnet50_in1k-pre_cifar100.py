# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/resnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py']
