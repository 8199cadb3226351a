# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py']
