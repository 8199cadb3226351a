# Kept for the published path: the config moved to configs/skipresnet/.
_base_ = ['./skipresnet/'
          'cascade-mask-rcnn_skipresnext101-32x4d_fpn_ms-3x_coco.py']
