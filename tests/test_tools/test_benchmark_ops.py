"""tools/analysis/benchmark_ops.py on tiny sizes: it really runs mmcv's
compiled RoIAlign (forward and backward) and NMS and prints their table."""
import json
import re

import pytest

from tests.helpers import load_tool, run_tool

TINY = [
    '--channels', '4', '--feat-size', '8', '--rois', '6', '--out-size', '3',
    '--boxes', '40', '--warmup', '1', '--repeats', '3'
]
ROW = re.compile(r'^\| (.+?) \| (.+?) \| ([\d.]+) \| ([\d.]+) \| '
                 r'([\d.]+) - ([\d.]+) \|$')


@pytest.fixture(scope='module')
def tool():
    pytest.importorskip('mmcv.ops', reason='needs mmcv with its C++ ops')
    return load_tool('analysis/benchmark_ops')


def table_rows(text):
    return {
        m.group(1): m.groups()[1:]
        for m in map(ROW.match, text.splitlines()) if m
    }


def test_times_the_three_ops_and_prints_their_table(tool, tmp_path, capsys):
    out = tmp_path / 'ops.json'
    res = tool.main(TINY + ['--json', str(out)])
    text = capsys.readouterr().out
    assert '| op | inputs | median (ms) | median CPU (ms) | min - max (ms) |' \
        in text and f"mmcv {res['mmcv']}" in text
    rows = table_rows(text)
    assert list(rows) == ['roi_align forward', 'roi_align backward', 'nms']
    assert rows['roi_align forward'][0] == \
        '1x4x8x8 feature, 6 RoIs -> 3x3'
    kept = int(re.search(r'\((\d+) kept\)', rows['nms'][0]).group(1))
    assert rows['nms'][0].startswith('40 boxes, IoU 0.7') and 0 < kept <= 40
    for name, (_, med, cpu, lo, hi) in rows.items():
        e = res['ops'][name]
        assert e['samples'] == 3 and 0 < e['min_s'] <= e['time_s'] <= \
            e['max_s'] and e['cpu_time_s'] > 0, name
        assert float(lo) <= float(med) <= float(hi), name
        assert float(med) == pytest.approx(e['time_s'] * 1e3, abs=0.006)
    assert json.loads(out.read_text())['ops'].keys() == res['ops'].keys()


def test_inputs_are_seeded_and_boxes_valid(tool):
    opts = tool.parse_args(TINY + ['--batch', '2'])
    a, b = tool.make_inputs(opts), tool.make_inputs(opts)
    assert all(a[k].equal(b[k]) for k in a)
    img = opts.feat_size * opts.stride
    for boxes in (a['rois'][:, 1:], a['boxes']):
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert boxes.min() >= 0 and boxes.max() <= img
    assert set(a['rois'][:, 0].tolist()) <= {0.0, 1.0}
    c = tool.make_inputs(tool.parse_args(TINY + ['--seed', '1']))
    assert not c['boxes'].equal(
        tool.make_inputs(tool.parse_args(TINY))['boxes'])


def test_time_op_takes_medians_after_warmup(tool):
    calls = []
    res = tool.time_op(
        lambda s: calls.append(s),
        warmup=2,
        repeats=5,
        setup=lambda: len(calls))
    assert calls == list(range(7)) and res['samples'] == 5


def test_runs_as_a_script_with_one_op():
    result = run_tool(
        ['tools/analysis/benchmark_ops.py', *TINY, '--ops', 'nms'],
        timeout=300)
    assert result.returncode == 0, result.stderr
    assert list(table_rows(result.stdout)) == ['nms']
