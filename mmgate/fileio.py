"""Checkpoint files: the one reading path and atomic writing.

Every place mmgate reads a weight file ends here (:func:`read_checkpoint`:
backbone ``init_cfg``, the timm converter, the analysis tools, and
:class:`mmgate.engine.Runner`'s ``load_from``, ``--resume`` and
``tools/test.py``; URLs are downloaded and loaded by ``torch.hub`` with
``weights_only=True``).
:func:`read_local_checkpoint` looks at the file before ``torch.load`` does,
so that a file that cannot be a checkpoint ends with one line naming it and
what is wrong with it:

============================  =============================================
file                          ``CheckpointError`` message (after the path)
============================  =============================================
missing                       ``does not exist`` (a ``FileNotFoundError``)
empty                         ``is empty (0 bytes)``
cut off while written         ``is a truncated zip archive ...``
a byte changed on disk        ``is damaged: its record ... fails its CRC``
zip, but not from torch.save  ``is a zip archive but not a PyTorch ...``
anything else                 ``is not a PyTorch file (it starts with ...)``
a bare ``pickle.dump`` file   ``is a bare pickle, not a PyTorch file ...``
objects beyond tensors        ``is a pickle that needs code execution ...``
============================  =============================================

Nothing here advises loading with ``weights_only=False``. A file that is
not a zip archive or a legacy ``torch.save`` file is refused before anything
unpickles it, even for a run's own checkpoints (``trusted=True``); those are
read with ``weights_only=False`` (MMEngine pickles its message hub), but
only after a scan of their pickle opcodes finds no reference to a function
that runs code (``os.system``, ``builtins.eval``, ``subprocess`` ...).
That scan is a tripwire for files that are plainly hostile, not a sandbox:
only ``weights_only=True`` (every file that is not a run's own checkpoint)
is safe against a crafted pickle.

Writing (:func:`atomic_path`, :func:`atomic_write`,
:func:`save_torch_atomic`, :func:`write_text_atomic`) goes to a temporary
file next to the target that is renamed over it once complete
(``os.replace``, atomic on POSIX), so a process killed while writing leaves
the previous file or none, never half of one.
"""
import contextlib
import functools
import glob
import io
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from typing import Iterator, List, Optional, Tuple

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'inspect_checkpoint',
    'verify_checkpoint', 'read_local_checkpoint', 'read_checkpoint',
    'atomic_path', 'atomic_write', 'save_torch_atomic', 'write_text_atomic',
    'checkpoints_in', 'find_resume_checkpoint', 'previous_intact_checkpoint',
    'nonfinite_tensors', 'name_tensors', 'refuse_nonfinite'
]

ZIP_MAGIC = b'PK\x03\x04'
# torch.serialization.MAGIC_NUMBER, pickled first by the legacy (pre-1.6)
# writer; torch writes it with protocol 2 unless told otherwise
_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
LEGACY_MAGICS = tuple(
    pickle.dumps(_MAGIC_NUMBER, protocol=p)
    for p in range(2, pickle.HIGHEST_PROTOCOL + 1))
_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')

# Globals whose call runs code or touches the system: a checkpoint that
# references one is refused even as a run's own (see the module docstring).
_CODE_MODULES = frozenset({
    'os', 'posix', 'nt', 'subprocess', 'commands', 'sys', 'shutil', 'socket',
    'importlib', 'runpy', 'pty', 'code', 'codeop', 'ctypes', 'pickle',
    '_pickle', 'marshal', 'webbrowser', 'multiprocessing', 'signal',
    'tempfile', 'pathlib', 'io', '_io', 'urllib', 'http', 'ftplib', 'smtplib',
    'asyncio', 'threading', '_thread', 'pydoc', 'timeit', 'cProfile',
    'profile', 'pdb', 'bdb', 'trace', 'platform', 'glob', 'zipimport', 'site',
    'sysconfig', 'gc', 'operator', 'pip', 'setuptools', 'distutils', 'dill',
    'cloudpickle', 'joblib'
})
_CODE_BUILTINS = frozenset({
    'eval', 'exec', 'compile', '__import__', 'open', 'setattr', 'delattr',
    'breakpoint', 'input', 'globals', 'locals', 'vars', 'exit', 'quit', 'help',
    'memoryview', 'print'
})
_CODE_PREFIXES = ('torch.hub', 'torch.jit', 'torch.load', 'torch.package',
                  'torch.serialization', 'torch.utils.cpp_extension',
                  'torch.ops', 'torch._dynamo', 'torch.compile', 'numpy.load',
                  'numpy.lib.npyio', 'numpy.f2py', 'numpy.distutils',
                  'numpy.testing', 'mmengine.config',
                  'mmengine.utils.misc.import_modules')


class CheckpointError(ValueError):
    """A file that cannot be read as a checkpoint; the message is one line
    naming the file and what is wrong with it."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def _size(filename: str) -> str:
    n = osp.getsize(filename)
    return f'{n} byte' + ('' if n == 1 else 's')


def inspect_checkpoint(filename) -> str:
    """Look at a local file without unpickling anything.

    Returns:
        str: ``'zip'`` (``torch.save``'s format since torch 1.6) or
        ``'legacy'`` (the older pickle stream).

    Raises:
        CheckpointNotFoundError: The file does not exist.
        CheckpointError: The file is empty, truncated, a zip archive that
            ``torch.save`` did not write, a bare pickle or not a PyTorch
            file at all.
    """
    filename = str(filename)
    if not osp.exists(filename):
        raise CheckpointNotFoundError(f'checkpoint {filename} does not exist')
    if osp.isdir(filename):
        raise CheckpointError(f'checkpoint {filename} is a directory, not a '
                              'checkpoint file')
    if osp.getsize(filename) == 0:
        raise CheckpointError(f'checkpoint {filename} is empty (0 bytes)')
    with open(filename, 'rb') as f:
        head = f.read(64)
    if head.startswith(ZIP_MAGIC) or (len(head) < 4
                                      and ZIP_MAGIC.startswith(head)):
        try:
            with zipfile.ZipFile(filename) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as e:
            if 'not a zip file' in str(e).lower():
                raise CheckpointError(
                    f'checkpoint {filename} is a truncated zip archive '
                    f'({_size(filename)}, no central directory at its end): '
                    'it was cut off while being written or copied') from None
            raise CheckpointError(f'checkpoint {filename} is a damaged zip '
                                  f'archive ({e})') from None
        if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
            raise CheckpointError(
                f'checkpoint {filename} is a zip archive but not a PyTorch '
                'checkpoint (no data.pkl in it)')
        return 'zip'
    if any(head.startswith(m) for m in LEGACY_MAGICS):
        return 'legacy'
    if any(m.startswith(head) for m in LEGACY_MAGICS):
        raise CheckpointError(f'checkpoint {filename} is a truncated PyTorch '
                              f'file (legacy format, {_size(filename)})')
    if head.startswith(b'version https://git-lfs'):
        raise CheckpointError(f'checkpoint {filename} is a Git LFS pointer, '
                              'not the weights (fetch them: git lfs pull)')
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise CheckpointError(
            f'checkpoint {filename} is a bare pickle, not a PyTorch file: '
            'refused without unpickling it (unpickling can run code)')
    raise CheckpointError(
        f'checkpoint {filename} is not a PyTorch file (it starts with '
        f'{head[:8]!r}; torch.save writes a zip archive)')


def _pickle_globals(stream) -> List[str]:
    """The globals (``module.name``) one pickle in ``stream`` refers to,
    read opcode by opcode without unpickling; the stream is left after the
    pickle's STOP. A ``STACK_GLOBAL`` whose operands are not plain strings
    pushed just before is reported as ``'<unresolved>'``."""
    found, recent, memo = [], [], {}
    for op, arg, _ in pickletools.genops(stream):
        name = op.name
        if name in ('GLOBAL', 'INST'):
            module, _, qualname = arg.partition(' ')
            found.append(f'{module}.{qualname}')
            recent.append(None)
        elif name == 'STACK_GLOBAL':
            a, b = recent if len(recent) == 2 else (None, None)
            found.append(f'{a}.{b}' if isinstance(a, str)
                         and isinstance(b, str) else '<unresolved>')
            recent.append(None)
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
            memo[arg] = recent[-1] if recent else None
        elif name == 'MEMOIZE':
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ('GET', 'BINGET', 'LONG_BINGET'):
            recent.append(memo.get(arg))
        elif isinstance(arg, str) and 'UNICODE' in name or name in (
                'STRING', 'BINSTRING', 'SHORT_BINSTRING'):
            recent.append(arg)
        elif name != 'PROTO' and name != 'FRAME':
            recent.append(None)
        del recent[:-2]
    return found


def _runs_code(name: str) -> bool:
    """Whether a pickle global is one of the tripwire's (``getattr`` alone
    is not: ``torch.save`` pickles dtypes through it)"""
    if name == '<unresolved>':
        return True
    parts = name.split('.')
    if parts[0] in ('builtins', '__builtin__'):
        return len(parts) != 2 or parts[1] in _CODE_BUILTINS
    # ``GLOBAL torch os`` resolves to the os module that torch imported
    if any(p in _CODE_MODULES for p in parts):
        return True
    return any(name == p or name.startswith(p + '.') for p in _CODE_PREFIXES)


def _globals_in(filename: str, fmt: str) -> List[str]:
    """Every global the checkpoint's pickles refer to."""
    if fmt == 'zip':
        with zipfile.ZipFile(filename) as zf:
            record = next(n for n in zf.namelist()
                          if n == 'data.pkl' or n.endswith('/data.pkl'))
            return _pickle_globals(io.BytesIO(zf.read(record)))
    found = []
    with open(filename, 'rb') as f:
        # magic number, protocol version, system info, then the object
        for _ in range(4):
            found += _pickle_globals(f)
    return found


def _refuse_code(filename: str, fmt: str) -> None:
    try:
        names = _globals_in(filename, fmt)
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(
            f'checkpoint {filename} is damaged: its pickle cannot be parsed '
            f'({type(e).__name__}: {e})') from None
    bad = sorted({n for n in names if _runs_code(n)})
    if bad:
        raise CheckpointError(
            f'checkpoint {filename} is a pickle that would run code when '
            f'unpickled (it calls {", ".join(bad[:3])}): refused')


def verify_checkpoint(filename) -> str:
    """:func:`inspect_checkpoint` plus a check of every zip record's CRC
    (reads the whole file once), or of the legacy format's pickle
    streams: what resuming and ``tools/test.py`` check before they start.

    Returns:
        str: The format (``'zip'`` or ``'legacy'``).

    Raises:
        CheckpointError: As :func:`inspect_checkpoint`, or a record is
            damaged.
    """
    filename = str(filename)
    fmt = inspect_checkpoint(filename)
    try:
        if fmt == 'zip':
            with zipfile.ZipFile(filename) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f'checkpoint {filename} is damaged: '
                                      f'its record {bad} fails its CRC check')
        else:
            _globals_in(filename, fmt)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f'checkpoint {filename} is damaged '
                              f'({type(e).__name__}: {e})') from None
    return fmt


_TRUNCATED = ('pickle data was truncated', 'unexpected EOF', 'Ran out of '
              'input')


def _explain(filename: str, fmt: str, exc: BaseException,
             weights_only: bool) -> Optional[CheckpointError]:
    """The one-line error for what ``torch.load`` raised on a file that
    passed :func:`inspect_checkpoint`; None when it is not about the file."""
    text = str(exc)
    if weights_only and 'Weights only load failed' in text:
        names = re.findall(r'GLOBAL ([\w.]+)', text)
        if fmt == 'zip':
            with contextlib.suppress(Exception):
                import torch
                names = torch.serialization.get_unsafe_globals_in_checkpoint(
                    filename) or names
        if names:
            what = ', '.join(sorted(set(names))[:3])
            return CheckpointError(
                f'checkpoint {filename} is a pickle that needs code '
                f'execution to unpickle (it references {what}): refused, '
                'weight files are read with weights_only=True; save plain '
                'tensors instead (torch.save(model.state_dict(), path))')
        last = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return CheckpointError(
            f'checkpoint {filename} cannot be unpickled as weights: '
            f'{last[-1] if last else type(exc).__name__}')
    if isinstance(exc, EOFError) or any(t in text for t in _TRUNCATED):
        return CheckpointError(
            f'checkpoint {filename} is a truncated PyTorch file ({fmt} '
            f'format, {_size(filename)})')
    if 'PytorchStreamReader failed' in text:
        reason = text.split('zip archive:', 1)[-1].split('.')[0].strip()
        return CheckpointError(f'checkpoint {filename} is a damaged zip '
                               f'archive ({reason})')
    if isinstance(exc, pickle.UnpicklingError):
        return CheckpointError(f'checkpoint {filename} is damaged: '
                               f'{text.splitlines()[0] if text else exc!r}')
    return None


def read_local_checkpoint(filename, map_location=None, trusted: bool = False):
    """Read a local checkpoint: :func:`verify_checkpoint` (torch itself
    does not check the zip records' CRCs), then ``torch.load`` with
    ``weights_only=not trusted``.

    Args:
        filename (str): Path of the file.
        map_location: As ``torch.load``'s.
        trusted (bool): A run's own checkpoint (MMEngine pickles its message
            hub): loaded with ``weights_only=False`` once a scan of its
            pickle finds no call that runs code. Defaults to False.

    Raises:
        CheckpointNotFoundError: The file does not exist.
        CheckpointError: The file is not a readable checkpoint, or needs
            code execution to unpickle (one line naming the file).
    """
    import torch
    filename = str(filename)
    fmt = verify_checkpoint(filename)
    if trusted:
        _refuse_code(filename, fmt)
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=not trusted)
    except Exception as e:
        error = _explain(filename, fmt, e, not trusted)
        if error is None:
            raise
        raise error from None


def _resolve_named(filename: str):
    """``(url_or_path, postprocess)`` behind MMEngine's named-checkpoint
    schemes (``torchvision://``, ``open-mmlab://``, ``mmcls://``), resolved
    as MMEngine's loaders resolve them; None for any other name."""
    import warnings

    from mmengine.runner import checkpoint as ckpt
    if filename.startswith(('modelzoo://', 'torchvision://')):
        if filename.startswith('modelzoo://'):
            warnings.warn(
                'The URL scheme of "modelzoo://" is deprecated, please '
                'use "torchvision://" instead', DeprecationWarning)
        name = filename.split('://', 1)[1]
        return ckpt.get_torchvision_models()[name], None
    if filename.startswith(('open-mmlab://', 'openmmlab://')):
        prefix, name = filename.split('://', 1)
        deprecated = ckpt.get_deprecated_model_names()
        if name in deprecated:
            warnings.warn(
                f'{prefix}://{name} is deprecated in favor of '
                f'{prefix}://{deprecated[name]}', DeprecationWarning)
            name = deprecated[name]
        url = ckpt.get_external_models()[name]
        if not url.startswith(('http://', 'https://')):
            url = osp.join(ckpt._get_mmengine_home(), url)
        return url, None
    if filename.startswith('mmcls://'):
        return (ckpt.get_mmcls_models()[filename[len('mmcls://'):]],
                ckpt._process_mmcls_checkpoint)
    return None


def _load_url(url: str, map_location=None, model_dir=None):
    """MMEngine's ``load_from_http`` (local rank 0 downloads first), always
    with ``weights_only=True``."""
    import torch
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    load = functools.partial(
        torch.hub.load_state_dict_from_url,
        url,
        model_dir=model_dir,
        map_location=map_location,
        weights_only=True)
    if rank == 0:
        checkpoint = load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint


def read_checkpoint(filename, map_location=None, trusted: bool = False):
    """Read a checkpoint by mmgate's rule: weights only, unless it is a
    run's own local checkpoint.

    - a local file goes through :func:`read_local_checkpoint`
      (``weights_only=not trusted``);
    - URLs and MMEngine's named checkpoints (``torchvision://``,
      ``open-mmlab://``, ``mmcls://``) always load with
      ``weights_only=True``, downloaded as MMEngine downloads them;
    - any other scheme (``s3://``, ``pavi://`` ...) goes to MMEngine's own
      loader.

    Args:
        filename (str): A path, a URL or a named checkpoint.
        map_location: As ``torch.load``'s.
        trusted (bool): A run's own local checkpoint (``load_from``,
            ``--resume``, ``tools/test.py``), which holds MMEngine's pickled
            objects. Defaults to False.
    """
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import CheckpointLoader
    filename = str(filename)
    named = _resolve_named(filename)
    source, post = named if named is not None else (filename, None)
    if source.startswith(('http://', 'https://')):
        print_log(
            f'Loads checkpoint by http backend from path: {filename}',
            logger='current')
        checkpoint = _load_url(source, map_location=map_location)
    elif named is not None or '://' not in source:
        print_log(
            f'Loads checkpoint by local backend from path: {filename}',
            logger='current')
        checkpoint = read_local_checkpoint(
            osp.expanduser(source),
            map_location=map_location,
            trusted=trusted and named is None)
    else:
        return CheckpointLoader.load_checkpoint(filename, map_location)
    return post(checkpoint) if post is not None else checkpoint


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(filename) -> Iterator[str]:
    """A temporary path next to ``filename`` for a writer that takes a path;
    when the block ends without an exception the file there is flushed to
    disk and renamed over ``filename``. Otherwise it is removed and
    ``filename`` is untouched. Temporary files left by a killed writer are
    removed first.

    Example:
        >>> import os.path as osp, tempfile
        >>> target = osp.join(tempfile.mkdtemp(), 'a.txt')
        >>> with atomic_path(target) as tmp:
        ...     _ = open(tmp, 'w').write('done')
        >>> open(target).read()
        'done'
    """
    filename = str(filename)
    folder, base = osp.split(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(osp.join(folder, f'.{glob.escape(base)}.*.tmp')):
        with contextlib.suppress(OSError):
            os.remove(stale)
    tmp = osp.join(folder, f'.{base}.{os.getpid()}.tmp')
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, filename)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(filename, mode: str = 'wb') -> Iterator[io.IOBase]:
    """:func:`atomic_path` for a writer that takes an open file."""
    with atomic_path(filename) as tmp, open(tmp, mode.replace('w', 'x')) as f:
        yield f


def save_torch_atomic(obj, filename) -> None:
    """``torch.save(obj, filename)`` through :func:`atomic_write`."""
    import torch
    with atomic_write(filename) as f:
        torch.save(obj, f)


def write_text_atomic(filename, text: str) -> None:
    """Write a small text file (e.g. ``last_checkpoint``) atomically."""
    with atomic_write(filename, 'w') as f:
        f.write(text)


def checkpoints_in(folder: str) -> List[str]:
    """MMEngine's ``epoch_N.pth`` / ``iter_N.pth`` in ``folder``, newest
    first (by N; epoch and iteration files by modification time)."""
    if not osp.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        m = _CHECKPOINT_NAME.match(name)
        if m:
            path = osp.join(folder, name)
            found.append((osp.getmtime(path), int(m[2]), m[1], path))
    by_kind = {}
    for item in found:
        by_kind.setdefault(item[2], []).append(item)
    if len(by_kind) > 1:  # both kinds: order by time
        return [p for *_, p in sorted(found, reverse=True)]
    return [p for _, n, _, p in sorted(found, key=lambda t: -t[1])]


def previous_intact_checkpoint(damaged: str) -> Optional[str]:
    """The newest intact checkpoint in the folder of ``damaged`` that is
    older than it (by its number), or None."""
    folder = osp.dirname(osp.abspath(damaged))
    m = _CHECKPOINT_NAME.match(osp.basename(damaged))
    for path in checkpoints_in(folder):
        if osp.abspath(path) == osp.abspath(damaged):
            continue
        n = _CHECKPOINT_NAME.match(osp.basename(path))
        if m and n and n[1] == m[1] and int(n[2]) > int(m[2]):
            continue
        try:
            verify_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None


def find_resume_checkpoint(
        work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint ``--resume`` (without a path) should take.

    MMEngine takes the file named in ``work_dir/last_checkpoint``. Here that
    file is verified first (:func:`verify_checkpoint`); when it is damaged
    or gone, or ``last_checkpoint`` is missing while checkpoints exist, the
    newest intact checkpoint is taken instead, with a note that says why.

    Returns:
        tuple: ``(path or None, note or None)``: None when there is nothing
        to resume (a fresh run, as MMEngine).

    Raises:
        CheckpointError: ``last_checkpoint`` names a damaged file and no
            intact checkpoint is left in ``work_dir``.
    """
    last_file = osp.join(work_dir, 'last_checkpoint')
    pointed = None
    if osp.isfile(last_file):
        with open(last_file, encoding='utf-8', errors='replace') as f:
            pointed = f.read().strip() or None
    if pointed is None:
        for path in checkpoints_in(work_dir):
            try:
                verify_checkpoint(path)
            except CheckpointError:
                continue
            why = ('is empty' if osp.isfile(last_file) else 'does not exist')
            return path, (f'{last_file} {why}; resuming from the newest '
                          f'intact checkpoint {path}')
        return None, None
    if not osp.exists(pointed):
        local = osp.join(work_dir, osp.basename(pointed))
        pointed = local if osp.exists(local) else pointed
    try:
        verify_checkpoint(pointed)
        return pointed, None
    except CheckpointError as e:
        problem = str(e)
    previous = previous_intact_checkpoint(
        pointed if osp.dirname(pointed) else osp.join(work_dir, pointed))
    if previous is None:
        raise CheckpointError(
            f'the last checkpoint (named in {last_file}): {problem}; no '
            f'earlier intact checkpoint is in {work_dir}')
    return previous, (f'the last checkpoint (named in {last_file}): '
                      f'{problem}; resuming from the previous intact '
                      f'checkpoint {previous}')


def nonfinite_tensors(state_dict) -> List[str]:
    """The names of the floating-point tensors of ``state_dict`` that hold a
    NaN or an infinity, in its order."""
    import torch
    return [
        k for k, v in state_dict.items() if isinstance(v, torch.Tensor)
        and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]


def name_tensors(names: List[str], limit: int = 5) -> str:
    """``'161 tensors (conv1.weight, bn1.weight, ... +156 more)'``: a count
    and the first ``limit`` names, for one-line messages."""
    shown = ', '.join(names[:limit])
    more = f', ... +{len(names) - limit} more' if len(names) > limit else ''
    what = 'tensor' if len(names) == 1 else 'tensors'
    return f'{len(names)} {what} ({shown}{more})'


def refuse_nonfinite(state_dict, filename) -> None:
    """Raise :class:`CheckpointError` when a floating-point tensor of
    ``state_dict``, read from ``filename``, holds a NaN or an infinity; the
    one line names the file, the count and the first tensors."""
    bad = nonfinite_tensors(state_dict)
    if bad:
        raise CheckpointError(
            f'checkpoint {filename} holds non-finite values (NaN / Inf) in '
            f'{name_tensors(bad)}: refused')
