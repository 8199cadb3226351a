"""``tools/train.py --amp`` without CUDA: bf16 autocast on the CPU through
``mmgate.CPUAmpOptimWrapper`` (MMEngine's AmpOptimWrapper needs a CUDA, NPU
or MLU device). A real short run of the det demo (Cascade Mask R-CNN +
SkipResNet-18) on the tiny demo set: the wrapper is the one built, the
forward ran in bfloat16, the losses are finite and a checkpoint is written.
"""
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn

from tests.helpers import REPO_ROOT, coco_options

DET = osp.join(REPO_ROOT, 'configs', 'demo',
               'cascade_rcnn_skipresnet18_demo.py')

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='--amp on a CPU-only machine')


def test_wrapper_autocasts_forward_to_bf16_and_updates_in_fp32():
    from mmgate.engine import CPUAmpOptimWrapper
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    x = torch.rand(2, 3, 8, 8)
    with wrapper.optim_context(model):
        out = model(x)
        assert torch.is_autocast_enabled('cpu')
    assert not torch.is_autocast_enabled('cpu')
    assert out.dtype == torch.bfloat16
    before = model[0].weight.detach().clone()
    wrapper.update_params(out.float().square().mean())
    assert model[0].weight.dtype == torch.float32
    assert not torch.equal(model[0].weight, before)  # the step happened
    with pytest.raises(ValueError, match='bfloat16 or float16'):
        CPUAmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            dtype='int8')


@pytest.mark.parametrize('scope', [None, 'mmdet'])
def test_registered_in_the_mmgate_scope(scope):
    from mmengine.registry import OPTIM_WRAPPERS, DefaultScope

    import mmgate.engine  # noqa: F401
    from mmgate.engine import CPUAmpOptimWrapper
    model = nn.Linear(2, 2)
    cfg = dict(
        type='mmgate.CPUAmpOptimWrapper',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    if scope is not None:
        import mmdet.registry  # noqa: F401 (the mmdet scope's registries)
        DefaultScope.get_instance('test_amp_cpu', scope_name=scope)
    assert type(OPTIM_WRAPPERS.build(cfg)) is CPUAmpOptimWrapper


def test_train_amp_on_cpu_runs_bf16_and_writes_a_checkpoint(
        tiny_demo, tmp_path, monkeypatch, capsys):
    import mmgate.apis.training as train
    from mmgate.engine import CPUAmpOptimWrapper
    seen = {}
    build_runner = train.build_runner

    def build_and_watch(cfg):
        runner = build_runner(cfg)
        seen['runner'] = runner
        conv = next(m for m in runner.model.backbone.modules()
                    if isinstance(m, nn.Conv2d))

        def record(module, inputs, output):
            if module.training:
                seen.setdefault('dtypes', set()).add(output.dtype)

        conv.register_forward_hook(record)
        return runner

    monkeypatch.setattr(train, 'build_runner', build_and_watch)
    work_dir = tmp_path / 'amp'
    # 4 images x RepeatDataset(3) / 2 a batch = 6 iterations, no validation
    train.main([
        DET, '--amp', '--work-dir',
        str(work_dir), '--cfg-options', *coco_options(tiny_demo / 'coco'),
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1'
    ])
    err = capsys.readouterr().err
    assert ('train.py: --amp without CUDA: bf16 autocast on the CPU '
            '(mmgate.CPUAmpOptimWrapper)') in err
    runner = seen['runner']
    assert type(runner.optim_wrapper) is CPUAmpOptimWrapper
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    assert runner.iter == 6
    assert seen['dtypes'] == {torch.bfloat16}
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    # the parameters stay fp32 (autocast casts copies in the forward)
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())
    assert osp.isfile(work_dir / 'epoch_1.pth')
    state = torch.load(
        work_dir / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 6
    assert all(
        torch.isfinite(v).all() for v in state['state_dict'].values()
        if v.is_floating_point())


def test_mmcv_ops_take_bf16_only_inside_the_shim():
    import mmcv._ext as ext
    from mmcv.ops import nms

    from mmgate.engine import mmcv_ops_in_fp32
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    original = ext.nms
    with pytest.raises(RuntimeError, match='BFloat16'):
        nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    with mmcv_ops_in_fp32():
        _, inds = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    assert inds.tolist() == [0, 2]
    assert ext.nms is original  # restored
