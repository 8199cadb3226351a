"""ONNX export (``tools/deploy/export_onnx.py``) checked under onnxruntime:
the gated backbones of the papers' tables, and a whole RetinaNet with a
gated backbone whose boxes, decoded by MMDetection from onnxruntime's raw
outputs, equal PyTorch's on a demo image."""
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers import REPO_ROOT, load_tool, stock_config

EXPORT = load_tool('deploy/export_onnx')
ERRORS = {}


@pytest.mark.parametrize('model', [
    'SkipResNet-50',
    'SkipResNeXt-50-32x4d',
    'SkipConvNeXt-T',
    osp.join(REPO_ROOT, 'configs', 'dense',
             'dense-resnet50-n4_1xb64-cos300e_in1k-160px.py'),
])
def test_backbone_exports_and_matches_onnxruntime(model, tmp_path):
    out = str(tmp_path / 'backbone.onnx')
    error = EXPORT.main([
        model, '--shape', '64', '--out', out, '--backbone-only', '--atol',
        '1e-4'
    ])
    ERRORS[osp.basename(model)] = error
    assert osp.isfile(out) and error < 1e-4
    assert not [p for p in tmp_path.iterdir() if p.suffix == '.tmp']


def test_failed_check_leaves_no_file(tmp_path):
    out = str(tmp_path / 'backbone.onnx')
    with pytest.raises(RuntimeError, match='not written'):
        EXPORT.main(
            ['SkipResNet-18', '--shape', '32', '--out', out, '--atol', '-1'])
    assert list(tmp_path.iterdir()) == []


def test_retinanet_boxes_from_onnxruntime_equal_pytorch(tiny_demo, tmp_path):
    import mmcv
    import onnxruntime as ort
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = stock_config('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
    cfg.model.backbone = dict(
        type='mmgate.SkipResNet',
        depth=18,
        base_channels=16,
        out_indices=(1, 2, 3))
    cfg.model.neck.in_channels = [32, 64, 128]
    cfg.model.bbox_head.num_classes = 3
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    image = sorted((tiny_demo / 'coco' / 'val2017').iterdir())[0]
    img = mmcv.imresize(mmcv.imread(str(image)), (160, 128))
    x = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)]))['inputs']
    wrapper = EXPORT.TensorOutputs(model, tensor_mode=True).eval()
    path = str(tmp_path / 'retinanet.onnx')
    torch.onnx.export(wrapper, (x, ), path, dynamo=False, opset_version=17)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = [
        torch.from_numpy(a)
        for a in session.run(None, {session.get_inputs()[0].name: x.numpy()})
    ]
    with torch.no_grad():
        ref = model(x, mode='tensor')  # (cls_scores, bbox_preds) per level
    levels = len(ref[0])
    meta = dict(
        img_shape=(128, 160), ori_shape=(128, 160), scale_factor=(1., 1.))
    # every candidate kept (no score cut, no top-k, NMS that suppresses
    # nothing): near-equal scores of an untrained head cannot reorder what
    # is kept, so both sets must agree box for box
    test_cfg = ConfigDict(
        cfg.model.test_cfg,
        score_thr=0.0,
        nms_pre=10**6,
        max_per_img=10**6,
        nms=dict(type='nms', iou_threshold=1.0))

    def boxes(cls_scores, bbox_preds):
        return model.bbox_head.predict_by_feat(
            cls_scores,
            bbox_preds,
            batch_img_metas=[meta],
            cfg=test_cfg,
            rescale=False)[0]

    def table(result):  # (label, box, score) rows in a fixed order
        rows = torch.cat([
            result.labels[:, None].float(), result.bboxes, result.scores[:,
                                                                         None]
        ], 1).numpy()
        return rows[np.lexsort(rows[:, ::-1].T)]

    ours = table(boxes(got[:levels], got[levels:]))
    theirs = table(boxes(list(ref[0]), list(ref[1])))
    assert len(theirs) > 1000 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-3
