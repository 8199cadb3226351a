"""Speed benchmark: interleaved timing, fresh-process peak memory, ratios."""
import pytest
import torch

from mmgate.analysis import speed
from mmgate.analysis.speed import (BenchOptions, benchmark, format_results,
                                   make_step, parse_model_literal,
                                   peak_memories)

BASE = dict(type='mmdet.ResNet', depth=18, base_channels=8)
SKIP = dict(type='mmgate.SkipResNet', depth=18, base_channels=8)


def test_benchmark_small_models():
    opts = BenchOptions(batch=2, size=32, warmup=1, iters=1, repeats=3)
    res = benchmark(BASE, SKIP, opts, modes=('train', 'eval'), memory=False)
    for mode in ('train', 'eval'):
        e = res['modes'][mode]
        assert len(e['base']['times']) == len(e['skip']['times']) == 3
        assert e['ratio']['time'] == pytest.approx(e['skip']['time_s'] /
                                                   e['base']['time_s'])
        assert e['base']['images_per_s'] == pytest.approx(2 /
                                                          e['base']['time_s'])
    assert res['params']['skip'] > res['params']['base']
    text = format_results(res)
    assert '| training step time (ms) |' in text
    assert 'peak memory' not in text


def test_timing_alternates_model_order(monkeypatch):
    calls = []

    def fake_step(model, mode, opts):
        return lambda: calls.append((model, mode))

    monkeypatch.setattr(speed, 'make_step', fake_step)
    opts = BenchOptions(warmup=0, iters=1, repeats=2)
    speed.time_models({'base': 'b', 'skip': 's'}, opts, modes=('train', ))
    assert calls == [('b', 'train'), ('s', 'train'), ('s', 'train'),
                     ('b', 'train')]


def test_train_step_updates_weights():
    from mmgate.analysis.complexity import build_model
    model = build_model(SKIP)
    opts = BenchOptions(batch=2, size=32)
    before = [p.detach().clone() for p in model.parameters()]
    make_step(model, 'train', opts)()
    assert model.training
    changed = sum(not torch.equal(a, b)
                  for a, b in zip(before, model.parameters()))
    assert changed > len(before) // 2
    make_step(model, 'eval', opts)()
    assert not model.training


@pytest.mark.parametrize('optimizer', ['sgd-foreach', 'sgd-fused'])
def test_train_step_optimizers_update_alike(optimizer):
    """PyTorch's foreach and fused SGD make the update of its default one
    (the benchmark's ``optimizer`` option)."""
    from mmgate.analysis.complexity import build_model
    torch.manual_seed(0)
    models = [build_model(SKIP) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    for model, name in zip(models, ('sgd', optimizer)):
        torch.manual_seed(1)
        make_step(model, 'train',
                  BenchOptions(batch=2, size=32, optimizer=name))()
    for a, b in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='optimizer must be one of'):
        BenchOptions(optimizer='adam')


def test_peak_memory_grows_with_batch():
    """Fresh-process peak RSS over the reset baseline: a training step on 16
    images needs clearly more than on 1 (the activations), and even 1 image
    needs more than the weights, gradients and momentum."""
    small, large = peak_memories([
        (SKIP, 'train', BenchOptions(batch=b, size=96, warmup=0, threads=1))
        for b in (1, 16)
    ])
    assert small['method'].startswith('VmHWM')
    from mmgate.analysis.complexity import build_model, count_params
    weights = 4 * count_params(build_model(SKIP))
    assert 3 * weights < small['peak_bytes'] < large['peak_bytes']
    # 16 x (at least the 8x48x48 stem output and the input, fp32)
    assert large['peak_bytes'] - small['peak_bytes'] > 15 * 4 * (8 * 48 * 48 +
                                                                 3 * 96 * 96)


def test_options_and_literals():
    with pytest.raises(KeyError, match='unknown benchmark options'):
        BenchOptions(batchsize=4)
    with pytest.raises(ValueError, match='batch must be >= 1'):
        BenchOptions(batch=0)
    assert parse_model_literal("dict(type='mmdet.ResNet', depth=50, "
                               "out_indices=(3, ), x=dict(a=1))") == dict(
                                   type='mmdet.ResNet',
                                   depth=50,
                                   out_indices=(3, ),
                                   x=dict(a=1))
    with pytest.raises(Exception, match='literal'):
        parse_model_literal("__import__('os').system('true')")


def test_tool_reports_both_norm_eval_settings_and_the_time_split(capsys):
    from tests.helpers import load_tool
    tool = load_tool('analysis/benchmark_speed')
    res = tool.main([
        '--base',
        repr(BASE), '--skip',
        repr(SKIP), '--batch', '2', '--size', '32', '--warmup', '0', '--iters',
        '1', '--repeats', '1', '--no-memory', '--modes', 'train'
    ])
    out = capsys.readouterr().out
    assert [r['options']['norm_eval'] for r in res['runs']] == [True, False]
    assert 'norm_eval True' in out and 'norm_eval False' in out
    assert out.count('| training step user / system time (ms) |') == 2
    assert out.count('| training step minor page faults per step |') == 2
    assert 'fused junction kernel loaded' in out
    for run in res['runs']:
        base = run['modes']['train']['base']
        assert base['user_s'] + base['sys_s'] > 0
        assert base['minor_faults'] >= 0


def test_allocator_must_exist():
    from tests.helpers import load_tool
    tool = load_tool('analysis/benchmark_speed')
    with pytest.raises(SystemExit, match='no such file'):
        tool.main(['--allocator', '/nonexistent/libjemalloc.so.2'])
