"""Faults and bad input: every reader of checkpoint files ends a bad file
with one line naming it, hostile pickles never run, and the fault table of
docs/en/user_guides/faults.md is the rendering of the cases these tests
inject (``python -m tests.test_tools.test_faults`` prints it).

The cases are data: each row names the fault, the exact one-line message the
user sees (``{file}``, ``{size}`` ... are filled in by the test) and what is
kept. The checkpoint-reading rows are asserted here, the saving / resuming
rows in ``test_checkpoint_io.py`` and the annotation rows in
``tests/test_datasets/test_annotation_faults.py``; this module renders them
all.
"""
import io
import os
import os.path as osp
import pickle
import re
import signal
import subprocess
import sys
import time
import zipfile
from typing import NamedTuple

import pytest
import torch

from mmgate.engine.runner import register_weights_only_loaders
from mmgate.fileio import CheckpointError, read_checkpoint
from tests.helpers import REPO_ROOT, free_port, load_tool, run_tool


class Fault(NamedTuple):
    fault: str  # what is injected
    sees: str  # the exact one-line message ({placeholders} filled in)
    kept: str  # what is kept
    quoted: bool = True  # ``sees`` is a message (False: a description)


UNTOUCHED = 'nothing is loaded; no file is written'
HOSTILE_KEPT = 'the payload never runs (its marker file is never created)'

# Checkpoint files handed to a reader that takes weights only (backbone
# init_cfg, MMEngine's Pretrained init, the timm converter,
# read_checkpoint): ``{file}`` is the path, ``{size}`` its size in bytes.
READ_FAULTS = {
    'missing':
    Fault('checkpoint file missing', 'checkpoint {file} does not exist',
          UNTOUCHED),
    'directory':
    Fault('checkpoint path is a directory',
          'checkpoint {file} is a directory, not a checkpoint file',
          UNTOUCHED),
    'empty':
    Fault('empty checkpoint file (0 bytes)',
          'checkpoint {file} is empty (0 bytes)', UNTOUCHED),
    'html':
    Fault(
        'an HTML error page saved as the checkpoint',
        "checkpoint {file} is not a PyTorch file (it starts with "
        "b'<!DOCTYP'; torch.save writes a zip archive)", UNTOUCHED),
    'lfs':
    Fault(
        'a Git LFS pointer instead of the weights',
        'checkpoint {file} is a Git LFS pointer, not the weights (fetch '
        'them: git lfs pull)', UNTOUCHED),
    'truncated_zip':
    Fault(
        'checkpoint cut off at half its size',
        'checkpoint {file} is a truncated zip archive ({size} bytes, no '
        'central directory at its end): it was cut off while being written '
        'or copied', UNTOUCHED),
    'truncated_legacy':
    Fault(
        'legacy-format (torch < 1.6) checkpoint cut off',
        'checkpoint {file} is a truncated PyTorch file (legacy format, '
        '{size} bytes)', UNTOUCHED),
    'crc':
    Fault(
        'one byte of a tensor changed on disk',
        'checkpoint {file} is damaged: its record {record} fails its CRC '
        'check', UNTOUCHED),
    'foreign_zip':
    Fault(
        'a zip archive that torch.save did not write',
        'checkpoint {file} is a zip archive but not a PyTorch checkpoint (no '
        'data.pkl in it)', UNTOUCHED),
    'bare_pickle':
    Fault(
        'a bare pickle.dump file whose payload runs a shell command',
        'checkpoint {file} is a bare pickle, not a PyTorch file: refused '
        'without unpickling it (unpickling can run code)', HOSTILE_KEPT),
    'hostile':
    Fault(
        'a torch.save file whose payload runs a shell command (zip and '
        'legacy format)',
        'checkpoint {file} is a pickle that needs code execution to unpickle '
        '(it references posix.system): refused, weight files are read with '
        'weights_only=True; save plain tensors instead '
        '(torch.save(model.state_dict(), path))', HOSTILE_KEPT),
    'objects':
    Fault(
        'a weight file that pickles an object (argparse.Namespace)',
        'checkpoint {file} is a pickle that needs code execution to unpickle '
        '(it references argparse.Namespace): refused, weight files are read '
        'with weights_only=True; save plain tensors instead '
        '(torch.save(model.state_dict(), path))', UNTOUCHED),
}

# The same files read as a run's own checkpoint (load_from, --resume,
# tools/test.py, the analysis tools: weights_only=False after a scan).
TRUSTED_FAULTS = {
    'hostile':
    Fault(
        "a run's own checkpoint (load_from, tools/test.py) whose payload "
        'runs a shell command',
        'checkpoint {file} is a pickle that would run code when unpickled '
        '(it calls posix.system): refused', HOSTILE_KEPT),
    'torch_os':
    Fault(
        "a run's own checkpoint reaching os.system through torch.os",
        'checkpoint {file} is a pickle that would run code when unpickled '
        '(it calls torch.os): refused', HOSTILE_KEPT),
}

# Tools around a bad file: exact last line of stderr, no traceback.
TOOL_FAULTS = {
    'train_init_cfg':
    Fault(
        'tools/train.py with a backbone init_cfg naming an HTML page',
        'train.py: error: checkpoint {file} is not a PyTorch file (it starts '
        "with b'<!DOCTYP'; torch.save writes a zip archive)",
        'the run stops before its first iteration; nothing is written'),
    'test_truncated':
    Fault(
        'tools/test.py CONFIG with a truncated checkpoint',
        'test.py: error: checkpoint {file} is a truncated zip archive '
        '({size} bytes, no central directory at its end): it was cut off '
        'while being written or copied',
        'the test stops before building the model'),
    'test_hostile':
    Fault(
        'tools/test.py CONFIG with a checkpoint whose payload runs a shell '
        'command',
        'test.py: error: checkpoint {file} is a pickle that would run code '
        'when unpickled (it calls posix.system): refused', HOSTILE_KEPT),
    'converter_empty':
    Fault(
        'tools/model_converters/skipnet_timm2mmgate.py with an empty, '
        'truncated or non-PyTorch file',
        'error: checkpoint {file} is empty (0 bytes)',
        'no output file is written'),
}

# A 2-process gloo run (tools/dist_train.sh CONFIG 2) losing a rank.
DIST_FAULTS = {
    'kill_rank':
    Fault(
        'SIGKILL of rank 1 of a 2-process gloo run (tools/dist_train.sh)',
        'dist_train.sh: error: rank 1 (local_rank: 1) failed first: exitcode '
        '-9 (pid: {pid}) (SIGKILL); torchrun stopped the other ranks and '
        'exited with 1',
        'the checkpoints saved so far; rank 0 is stopped within seconds, not '
        'left hanging'),
}

# ---- making the faulty files -------------------------------------------


class Payload:
    """Unpickling this runs ``touch marker`` (os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _weights():
    return {'state_dict': {'w': torch.arange(256.)}}


def _zip_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _torch_os_pickle(marker) -> bytes:
    """``getattr(torch.os, 'system')('touch marker')``, protocol 2, written
    by hand: no ``os`` / ``posix`` global appears, only ``torch.os``."""
    cmd = f'touch {marker}'.encode()
    return (b'\x80\x02c__builtin__\ngetattr\nctorch\nos\nX\x06\x00\x00\x00'
            b'system\x86R' + b'X' + len(cmd).to_bytes(4, 'little') + cmd +
            b'\x85R.')


def make_fault(kind: str, folder, marker=None) -> dict:
    """Write the faulty file of a case; return the template's values."""
    path = folder / f'{kind}.pth'
    marker = marker or folder / 'MARKER'
    if kind == 'directory':
        path.mkdir()
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'html':
        path.write_text('<!DOCTYPE html><html><body>404 Not Found</body>'
                        '</html>\n')
    elif kind == 'lfs':
        path.write_text('version https://git-lfs.github.com/spec/v1\noid '
                        'sha256:' + '0' * 64 + '\nsize 102400000\n')
    elif kind == 'truncated_zip':
        data = _zip_bytes(_weights())
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'truncated_legacy':
        torch.save(_weights(), path, _use_new_zipfile_serialization=False)
        path.write_bytes(path.read_bytes()[:-100])
    elif kind == 'crc':
        data = bytearray(_zip_bytes(_weights()))
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
            info = next(i for i in zf.infolist()
                        if i.filename.endswith('/data/0'))
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        data[start + 500] ^= 0x01  # one bit of one float
        path.write_bytes(bytes(data))
        return dict(file=str(path), record=info.filename)
    elif kind == 'foreign_zip':
        with zipfile.ZipFile(path, 'w') as zf:
            zf.writestr('weights/readme.txt', 'not a checkpoint')
    elif kind == 'bare_pickle':
        path.write_bytes(pickle.dumps({'state_dict': Payload(marker)}))
    elif kind == 'hostile':
        torch.save({'state_dict': Payload(marker)}, path)
    elif kind == 'hostile_legacy':
        torch.save({'state_dict': Payload(marker)},
                   path,
                   _use_new_zipfile_serialization=False)
    elif kind == 'torch_os':
        data = _zip_bytes({'state_dict': {}})
        with zipfile.ZipFile(io.BytesIO(data)) as src, \
                zipfile.ZipFile(path, 'w') as dst:
            for info in src.infolist():
                body = src.read(info)
                if info.filename.endswith('/data.pkl'):
                    body = _torch_os_pickle(marker)
                dst.writestr(info, body)
    elif kind == 'objects':
        import argparse
        torch.save(dict(_weights(), meta=argparse.Namespace(a=1)), path)
    else:
        assert kind == 'missing', kind
    values = dict(file=str(path))
    if path.is_file():
        values['size'] = str(path.stat().st_size)
    return values


# ---- the readers ---------------------------------------------------------


def _backbone(path):
    from mmgate.models import SkipResNet
    return SkipResNet(
        depth=18,
        base_channels=8,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))


def _read_all_ways(values) -> list:
    """The message each weights-only reader ends with."""
    from mmdet.registry import MODELS
    path = values['file']
    messages = []
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    messages.append(str(err.value))
    with pytest.raises(CheckpointError) as err:
        _backbone(path).init_weights()
    messages.append(str(err.value))
    # MMEngine's own Pretrained initialiser, once an mmgate Runner was built
    register_weights_only_loaders()
    resnet = MODELS.build(
        dict(
            type='mmdet.ResNet',
            depth=18,
            base_channels=8,
            init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(CheckpointError) as err:
        resnet.init_weights()
    messages.append(str(err.value))
    return messages


def _convert(src, dst) -> str:
    converter = load_tool('model_converters/skipnet_timm2mmgate')
    with pytest.raises(SystemExit) as exit_:
        converter.main([str(src), str(dst)])
    return str(exit_.value.code)


CASES = [*READ_FAULTS, 'hostile_legacy']


def _case(kind):
    """The table row of a file kind (both formats of a hostile file share
    one)."""
    return 'hostile' if kind == 'hostile_legacy' else kind


@pytest.mark.parametrize('kind', CASES)
def test_every_weights_reader_names_the_bad_file(kind, tmp_path):
    values = make_fault(kind, tmp_path)
    expected = READ_FAULTS[_case(kind)].sees.format(**values)
    assert '\n' not in expected
    assert _read_all_ways(values) == [expected] * 3
    # the converter: the same line, and no output file
    out = tmp_path / 'out' / 'converted.pth'
    assert _convert(values['file'], out) == f'error: {expected}'
    assert not out.parent.exists() or os.listdir(out.parent) == []
    assert 'weights_only=False' not in expected
    assert not (tmp_path / 'MARKER').exists()


@pytest.mark.parametrize('kind', ['hostile', 'hostile_legacy', 'torch_os'])
def test_trusted_readers_refuse_code(kind, tmp_path):
    """A run's own checkpoint loads with weights_only=False, but not one
    whose pickle calls os.system and the like."""
    values = make_fault(kind, tmp_path)
    expected = TRUSTED_FAULTS[_case(kind)].sees.format(**values)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(values['file'], trusted=True)
    assert str(err.value) == expected
    assert not (tmp_path / 'MARKER').exists()


@pytest.mark.parametrize('kind', ['hostile', 'torch_os', 'bare_pickle'])
def test_the_payloads_do_run_when_unpickled(kind, tmp_path):
    """Control: the marker files above stay absent because nothing ran, not
    because the payload is broken."""
    marker = tmp_path / 'MARKER'
    values = make_fault(kind, tmp_path, marker)
    if kind == 'bare_pickle':
        with open(values['file'], 'rb') as f:
            pickle.load(f)
    else:
        torch.load(values['file'], weights_only=False)
    assert marker.exists()


def test_a_runs_own_checkpoint_still_loads(tmp_path):
    """Objects MMEngine pickles (message hub, numpy) pass the scan."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    path = tmp_path / 'epoch_1.pth'
    torch.save(
        dict(
            state_dict=dict(w=torch.ones(2)),
            meta=dict(dtype=torch.float16, seed=np.int64(3)),
            message_hub=dict(
                log_scalars=dict(loss=HistoryBuffer([1.0, 2.0], [1, 1])))),
        path)
    loaded = read_checkpoint(str(path), trusted=True)
    assert loaded['meta']['dtype'] is torch.float16
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 1.5
    values = make_fault('objects', tmp_path)
    assert read_checkpoint(values['file'], trusted=True)['meta'].a == 1


def test_test_tool_names_the_bad_checkpoint(tiny_demo, tmp_path):
    """tools/test.py: a truncated checkpoint is refused before the model is
    built; a hostile one when the Runner loads it (trusted, scanned)."""
    test_tool = load_tool('test')
    config = 'configs/demo/cls_skipresnet18_demo.py'
    options = ['--work-dir',
               str(tmp_path / 'w'), '--cfg-options'] + [
                   f'{k}_dataloader.dataset.data_root={tiny_demo / "imagenet"}'
                   for k in ('train', 'val', 'test')
               ] + [
                   'test_dataloader.num_workers=0',
                   'test_dataloader.persistent_workers=False'
               ]
    values = make_fault('truncated_zip', tmp_path)
    with pytest.raises(SystemExit) as exit_:
        test_tool.main([config, values['file'], *options])
    assert exit_.value.code == TOOL_FAULTS['test_truncated'].sees.format(
        **values)
    values = make_fault('hostile', tmp_path)
    with pytest.raises(SystemExit) as exit_:
        test_tool.main([config, values['file'], *options])
    assert exit_.value.code == TOOL_FAULTS['test_hostile'].sees.format(
        **values)
    assert not (tmp_path / 'MARKER').exists()


def test_train_tool_one_line_for_a_bad_init_cfg(tiny_demo, tmp_path):
    values = make_fault('html', tmp_path)
    work_dir = tmp_path / 'w'
    result = run_tool([
        'tools/train.py', 'configs/demo/cls_skipresnet18_demo.py',
        '--work-dir',
        str(work_dir), '--cfg-options', *[
            f'{k}_dataloader.dataset.data_root={tiny_demo / "imagenet"}'
            for k in ('train', 'val', 'test')
        ], 'model.backbone.init_cfg.type=Pretrained',
        f'model.backbone.init_cfg.checkpoint={values["file"]}'
    ],
                      env={
                          **os.environ, 'OMP_NUM_THREADS': '1'
                      })
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == \
        TOOL_FAULTS['train_init_cfg'].sees.format(**values)
    assert not [f for f in os.listdir(work_dir) if f.endswith('.pth')]


def test_converter_command_line(tmp_path):
    values = make_fault('empty', tmp_path)
    out = tmp_path / 'out.pth'
    result = run_tool([
        'tools/model_converters/skipnet_timm2mmgate.py', values['file'],
        str(out)
    ])
    assert result.returncode == 1
    assert result.stderr.strip() == TOOL_FAULTS['converter_empty'].sees \
        .format(**values)
    assert not out.exists()


def _rank_pid(port, rank, timeout=120):
    """The pid of the torchrun worker of ``rank`` on ``port``."""
    want = {f'RANK={rank}'.encode(), f'MASTER_PORT={port}'.encode()}
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open(f'/proc/{pid}/environ', 'rb') as f:
                    env = set(f.read().split(b'\0'))
            except OSError:
                continue
            if want <= env:
                return int(pid)
        time.sleep(0.2)
    raise AssertionError(f'no rank {rank} on port {port}')


@pytest.mark.skipif(not osp.isdir('/proc'), reason='finds ranks in /proc')
def test_killed_rank_stops_the_run(tiny_demo, tmp_path):
    port = free_port()
    env = dict(
        os.environ, PYTHON=sys.executable, PORT=str(port), OMP_NUM_THREADS='1')
    proc = subprocess.Popen([
        osp.join(REPO_ROOT, 'tools', 'dist_train.sh'),
        'configs/demo/cls_skipresnet18_demo.py', '2', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', *[
            f'{k}_dataloader.dataset.data_root={tiny_demo / "imagenet"}'
            for k in ('train', 'val', 'test')
        ], 'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=1000', 'default_hooks.logger.interval=1'
    ],
                            cwd=REPO_ROOT,
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=open(tmp_path / 'stderr', 'w'),
                            text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:  # both ranks train
            if 'Epoch(train)' in line and '[1][2/' in line:
                break
        else:
            pytest.fail('the run ended before it could be killed: ' +
                        (tmp_path / 'stderr').read_text()[-3000:])
        rank0, rank1 = _rank_pid(port, 0), _rank_pid(port, 1)
        os.kill(rank1, signal.SIGKILL)
        killed = time.time()
        proc.communicate(timeout=120)
        took = time.time() - killed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = (tmp_path / 'stderr').read_text()
    assert proc.returncode == 1, err[-3000:]
    assert err.strip().splitlines()[-1] == DIST_FAULTS['kill_rank'].sees \
        .format(pid=rank1)
    assert took < 60, took
    assert not osp.exists(f'/proc/{rank0}') or open(
        f'/proc/{rank0}/stat').read().split()[2] == 'Z'


# ---- the README table --------------------------------------------------

# how the placeholders of the messages read in the table
_SHOWN = dict(
    file='FILE',
    size='N',
    record='RECORD',
    last='WORK_DIR/last_checkpoint',
    previous='PREVIOUS',
    work_dir='WORK_DIR',
    ann='ANN_FILE',
    i='i',
    j='j',
    id='ID',
    json='<the record as JSON>',
    image='IMAGE',
    key='CONFIG_KEY',
    width='W',
    height='H',
    rec_width='W0',
    rec_height='H0',
    pid='PID',
    iter='N',
    epoch='E',
    batch='B',
    terms='TERMS',
    scale='S',
    target='FILE',
    free='F',
    dir='DIR',
    pointer='WORK_DIR/last_checkpoint',
    count='N',
    names='NAMES',
    more='M')


def all_faults():
    """Every fault case of the tests, in table order."""
    from tests.test_datasets.test_annotation_faults import ANNOTATION_FAULTS
    from tests.test_engine.test_guards import GUARD_FAULTS
    from tests.test_models.test_pretrained_faults import LOAD_FAULTS
    from tests.test_tools.test_checkpoint_io import SAVE_FAULTS
    return [('Reading weights', list(READ_FAULTS.values())),
            ('Weights that read but do not fit', list(LOAD_FAULTS.values())),
            ("Reading a run's own checkpoint", list(TRUSTED_FAULTS.values())),
            ('Tools', list(TOOL_FAULTS.values())),
            ('Saving and resuming', list(SAVE_FAULTS.values())),
            ('A run that goes wrong', list(GUARD_FAULTS.values())),
            ('Distributed runs', list(DIST_FAULTS.values())),
            ('Annotations (COCO)', list(ANNOTATION_FAULTS.values()))]


def render_fault_table() -> str:
    lines = ['| fault | what the user sees | what is kept |', '|---|---|---|']
    for group, faults in all_faults():
        lines.append(f'| **{group}** | | |')
        for f in faults:
            sees = f.sees.format(**_SHOWN).replace('|', '\\|')
            sees = f'`{sees}`' if f.quoted else sees
            lines.append(f'| {f.fault} | {sees} | {f.kept} |')
    return '\n'.join(lines)


def test_readme_fault_table_is_the_tests_cases():
    with open(osp.join(REPO_ROOT, 'docs', 'en', 'user_guides',
                       'faults.md')) as f:
        readme = f.read()
    section = re.search(r'^## Faults and bad input\n(.*?)^## ', readme,
                        re.S | re.M)
    assert section, ('docs/en/user_guides/faults.md has no "## Faults and '
                     'bad input" section')
    table = '\n'.join(ln for ln in section[1].splitlines()
                      if ln.startswith('|'))
    assert table == render_fault_table(), (
        'the fault table of docs/en/user_guides/faults.md differs from the '
        'tests: paste the output of python -m tests.test_tools.test_faults')


if __name__ == '__main__':
    print(render_fault_table())
