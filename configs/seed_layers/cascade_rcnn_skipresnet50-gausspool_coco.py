# Kept for the published path: the config was renamed to the file below.
_base_ = ['./cascade-mask-rcnn_skipresnet50-gausspool-pre_fpn_ms-3x_coco.py']
