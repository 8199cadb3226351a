"""Gate statistics: recorded means against a hand computation."""
import math
import os.path as osp
import statistics

import pytest
import torch
from mmengine.config import Config

from mmgate.analysis.gates import (GateRecorder, gate_statistics,
                                   plot_gate_heatmap, random_batches,
                                   read_gate_csv, write_gate_csv)
from mmgate.models import SkipResNet
from mmgate.models.layers import GateModule
from tests.helpers import REPO_ROOT, load_tool

ROOT = REPO_ROOT


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_gate_means_match_hand_computation():
    """With conv2's weight zero, each gate's logits are conv2's bias,
    whatever the input: slot 0 -> sigmoid, slots 1..n -> softmax, per
    channel. The recorded means are then computable by hand."""
    model = SkipResNet(depth=18, base_channels=4).eval()
    expected = {}
    for name, gate in model.named_modules():
        if not isinstance(gate, GateModule):
            continue
        c, n = gate.channels, gate.num_inbounds
        # bias of channel ch in slot s: a different value per slot/channel
        bias = [[0.3 * s - 0.2 * ch + 0.1 * n for ch in range(c)]
                for s in range(n + 1)]
        gate.conv2.weight.data.zero_()
        gate.conv2.bias.data.copy_(torch.tensor(bias).flatten())
        sig = [_sigmoid(bias[0][ch]) for ch in range(c)]
        sm = [
            _softmax([bias[s][ch]
                      for s in range(1, n + 1)]) if n > 1 else [1.]
            for ch in range(c)
        ]
        w = [sum(sm[ch][k] for ch in range(c)) / c for k in range(n)]
        # spread over channels (unbiased std), averaged over inbounds
        w_std = sum(
            statistics.stdev(sm[ch][k] for ch in range(c))
            for k in range(n)) / n
        block = name.rsplit('.', 1)[0]
        expected[block] = (sum(sig) / c, w, statistics.stdev(sig), w_std)

    rows = gate_statistics(model, random_batches(5, size=32, batch_size=2))
    assert [r['block'] for r in rows] == [
        'layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1',
        'layer4.0', 'layer4.1'
    ]
    for r in rows:
        gate_y, w, gate_y_std, w_std = expected[r['block']]
        assert r['images'] == 5
        assert r['gate_y'] == pytest.approx(gate_y, abs=1e-6)
        assert r['gate_y_std'] == pytest.approx(gate_y_std, abs=1e-6)
        assert r['w_std'] == pytest.approx(w_std, abs=1e-6)
        assert [r[f'w_d{d}'] for d in r['distances']] == \
            pytest.approx(w, abs=1e-6)
    # block j reads xs[j + 1 - 2**i]: distances 1 (and 2 for block 1)
    assert rows[0]['distances'] == [1] and rows[1]['distances'] == [1, 2]


def test_means_weight_images_not_batches():
    """Batches of 3 and 1 images: the mean is over the 4 images, each
    image's value being its mean over channels of the gate's outputs."""
    gate = GateModule(channels=8, num_inbounds=3, reduction=2).eval()
    torch.nn.init.normal_(gate.conv2.weight, std=2.)
    model = torch.nn.ModuleDict(dict(gate=gate))
    batches = [[torch.rand(b, 8, 5, 5) * (i + 1) for i in range(4)]
               for b in (3, 1)]
    with torch.no_grad():
        per_image_y, per_image_w = [], []
        for y, *xs in batches:
            gy, w = gate.gate_weights(
                torch.cat([t.mean(dim=(2, 3), keepdim=True) for t in [y, *xs]],
                          1))
            per_image_y += gy.mean(1).tolist()
            per_image_w += w.mean(2).tolist()
    rows = gate_statistics(model, batches, forward=lambda b: gate(b[0], b[1:]))
    (row, ) = rows
    assert row['images'] == 4
    assert row['gate_y'] == pytest.approx(sum(per_image_y) / 4, abs=1e-6)
    for k, d in enumerate(row['distances']):
        assert row[f'w_d{d}'] == pytest.approx(
            sum(w[k] for w in per_image_w) / 4, abs=1e-6)
    assert sum(row[f'w_d{d}'] for d in row['distances']) == \
        pytest.approx(1, abs=1e-6)
    assert gate.record is False and gate.last_gates is None  # restored


def test_skip_distances_csv_and_heatmap(tmp_path):
    model = SkipResNet(
        depth=50,
        base_channels=2,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ))
    rows = gate_statistics(model, random_batches(2, size=32))
    by_block = {r['block']: r for r in rows}
    assert by_block['layer3.5']['distances'] == [1, 2, 4]
    assert by_block['layer2.3']['distances'] == [1, 2, 4]
    assert by_block['layer3.0']['num_inbounds'] == 1
    for r in rows:
        assert 0 < r['gate_y'] < 1
        assert sum(r[f'w_d{d}'] for d in r['distances']) == \
            pytest.approx(1, abs=1e-5)
    csv_path = str(tmp_path / 'gates.csv')
    write_gate_csv(rows, csv_path)
    back = read_gate_csv(csv_path)
    assert [r['block'] for r in back] == [r['block'] for r in rows]
    assert back[-1]['w_d4'] == pytest.approx(rows[-1]['w_d4'], abs=1e-6)
    assert 'w_d4' not in back[0]  # blank cell: no such inbound
    png = plot_gate_heatmap(rows, str(tmp_path / 'gates.png'))
    with open(png, 'rb') as f:
        assert f.read(4) == b'\x89PNG'


@pytest.mark.parametrize('backbone', [
    dict(type='DenseResNet', depth=18, base_channels=4, num_connections=3),
    dict(type='DenseMobileNetV2', widen_factor=0.25, num_connections=4),
])
def test_dense_distances_are_1_to_n_in_every_stage(backbone, tmp_path):
    """Dense blocks number their entries across the network: a gate after
    the first stage still reads the entries 1, 2, ..., N outputs back."""
    from mmgate.registry import MODELS
    model = MODELS.build(dict(backbone, type='mmgate.' + backbone['type']))
    n = backbone['num_connections']
    rows = gate_statistics(model, random_batches(2, size=32))
    assert len({r['stage'] for r in rows}) >= 4
    for i, r in enumerate(rows):  # row i is entry i of the network
        assert r['distances'] == list(range(1, min(n, i + 1) + 1)), r['block']
    png = plot_gate_heatmap(rows, str(tmp_path / 'dense.png'))
    with open(png, 'rb') as f:
        assert f.read(4) == b'\x89PNG'


def test_recorder_needs_gates():
    with pytest.raises(ValueError, match='no GateModule'):
        GateRecorder(torch.nn.Conv2d(3, 3, 1))


def test_gate_analysis_cli_backbone_config(tmp_path):
    cfg_path = str(tmp_path / 'skipconvnext_tiny_backbone.py')
    Config(
        dict(
            model=dict(
                type='mmgate.SkipConvNeXt',
                arch=dict(depths=[1, 1, 4, 1], channels=[8, 16, 32, 64]),
                out_indices=(3, )))).dump(cfg_path)
    # a checkpoint of a classifier around it: loaded through --prefix
    from mmgate.analysis.complexity import build_model
    backbone = build_model(Config.fromfile(cfg_path).model)
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(0.05)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in backbone.state_dict().items()
        }), ckpt)
    out = str(tmp_path / 'out')
    rows = load_tool('analysis/gate_analysis').main([
        cfg_path, '--checkpoint', ckpt, '--prefix', 'backbone.', '--random',
        '3', '--size', '32', '--batch-size', '2', '--out-dir', out
    ])
    assert [r['block']
            for r in rows][:3] == ['stages.0.0', 'stages.1.0', 'stages.2.0']
    assert rows[5]['distances'] == [1, 2, 4]  # stages.2.3
    assert all(r['images'] == 3 for r in rows)
    assert osp.isfile(osp.join(out, 'gates.csv'))
    assert osp.isfile(osp.join(out, 'gates.png'))
    # the checkpoint was loaded: same statistics as the shifted backbone
    ref = gate_statistics(backbone, random_batches(3, size=32, batch_size=2))
    assert rows[5]['gate_y'] == pytest.approx(ref[5]['gate_y'], abs=1e-5)
