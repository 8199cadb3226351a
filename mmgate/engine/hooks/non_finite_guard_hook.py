"""Stop a run at its first non-finite loss."""
import math
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from mmgate.registry import HOOKS
from ..errors import NonFiniteError

__all__ = ['NonFiniteGuardHook', 'last_good_checkpoint', 'smaller_lr_hint']


def last_good_checkpoint(runner) -> Optional[str]:
    """The newest checkpoint the run saved or resumed from, or None.

    mmgate's Runner never saves a non-finite model, so this is the
    checkpoint to resume from after a run diverged.
    """
    last = runner.message_hub.get_info('last_ckpt')
    if last:
        return last
    pointer = osp.join(runner.work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer, encoding='utf-8', errors='replace') as f:
            named = f.read().strip()
        if named:
            return named
    loaded = getattr(runner, '_load_from', None)
    return loaded if getattr(runner, '_resume', False) and loaded else None


def smaller_lr_hint(runner) -> str:
    """``--cfg-options optim_wrapper.optimizer.lr=X`` with a tenth of the
    config's learning rate (or a generic hint when it has none)."""
    lr = runner.cfg.get('optim_wrapper', {}).get('optimizer', {}).get('lr')
    if isinstance(lr, (int, float)) and lr > 0:
        return f'--cfg-options optim_wrapper.optimizer.lr={lr / 10:.6g}'
    return 'a smaller optim_wrapper.optimizer.lr'


def _loss_terms(outputs) -> Dict[str, float]:
    """The loss terms of a ``train_step`` result (the keys with "loss" in
    their name, as ``BaseModel.parse_losses`` sums them) as floats."""
    if not isinstance(outputs, dict):
        return {}
    terms = {}
    for key, value in outputs.items():
        if 'loss' not in key:
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().float()
            terms[key] = value.item() if value.numel() == 1 else \
                (math.nan if not torch.isfinite(value).all() else 0.)
        elif isinstance(value, (int, float)):
            terms[key] = float(value)
    return terms


def _describe(terms: Dict[str, float]) -> str:
    nan = [k for k, v in terms.items() if math.isnan(v)]
    inf = [k for k, v in terms.items() if math.isinf(v)]
    parts = []
    if nan:
        parts.append(f'NaN in {", ".join(nan)}')
    if inf:
        parts.append(f'Inf in {", ".join(inf)}')
    return '; '.join(parts)


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Stop training at the first non-finite loss, with one line that says
    where and how to go on.

    After every training iteration the loss terms of the step (the keys of
    the ``train_step`` result with "loss" in their name) are checked; in a
    distributed run the ranks agree on the verdict, so all of them stop at
    the same iteration. The error (:class:`mmgate.engine.NonFiniteError`)
    names the iteration, the epoch, the terms that are NaN or Inf and the
    last good checkpoint to resume from with a smaller learning rate. The
    hook runs before the checkpoint hook (priority ``ABOVE_NORMAL``), so no
    checkpoint is saved after a non-finite step (mmgate's Runner also
    refuses to save a model with non-finite parameters or buffers).

    Under fp16 AMP (MMEngine's ``AmpOptimWrapper`` with a dynamic
    ``GradScaler``) a non-finite step is normal: the scaler skips the update
    and lowers the loss scale. There the run stops only after
    ``max_skipped_steps`` consecutive skipped steps.

    :class:`mmgate.engine.Runner` adds this hook unless the config lists it;
    to change its options::

        custom_hooks = [dict(type='mmgate.NonFiniteGuardHook',
                             max_skipped_steps=50)]

    Args:
        max_skipped_steps (int): Consecutive steps skipped by the
            GradScaler after which an AMP run stops. Defaults to 20 (from
            the default scale 2**16, 20 halvings end at 2**-4).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_skipped_steps: int = 20) -> None:
        if not isinstance(max_skipped_steps, int) or max_skipped_steps < 1:
            raise ValueError('max_skipped_steps must be an int >= 1, got '
                             f'{max_skipped_steps!r}')
        self.max_skipped_steps = max_skipped_steps
        self._skipped = 0
        self._scale = None

    @staticmethod
    def _scaler(runner):
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        return scaler if scaler is not None and getattr(
            scaler, 'is_enabled', lambda: False)() else None

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        scaler = self._scaler(runner)
        self._scale = scaler.get_scale() if scaler is not None else None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        terms = _loss_terms(outputs)
        bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
        scaler = self._scaler(runner)
        if scaler is not None:
            # a dynamic scaler lowers its scale when it skips a step; a
            # static one skips silently, on a non-finite loss or gradient
            skipped = bool(bad) or (self._scale is not None
                                    and scaler.get_scale() < self._scale)
            self._skipped = self._skipped + 1 if skipped else 0
            stop = self._skipped >= self.max_skipped_steps
        else:
            stop = bool(bad)
        if get_world_size() > 1:
            flag = torch.tensor([float(stop)])
            all_reduce(flag)
            if flag.item() > 0:
                stop = True
                ranks: List[dict] = all_gather_object(bad)
                bad = next((b for b in ranks if b), bad)
        if stop:
            raise NonFiniteError(self._message(runner, batch_idx, bad, scaler))

    def _message(self, runner, batch_idx: int, bad: Dict[str, float],
                 scaler) -> str:
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        if scaler is not None:
            what = (f'{self._skipped} consecutive steps skipped by the fp16 '
                    f'GradScaler (loss scale now {scaler.get_scale():g})')
            if bad:
                what += f', {_describe(bad)}'
            head = f'training diverged at {where}: {what}'
        else:
            head = f'non-finite loss at {where}: {_describe(bad)}'
        last = last_good_checkpoint(runner)
        hint = smaller_lr_hint(runner)
        if last:
            tail = (f'the last good checkpoint is {last}: resume from it with '
                    f'a smaller lr (--resume {last} {hint})')
        else:
            tail = ('no checkpoint was saved before it: train again with a '
                    f'smaller lr ({hint})')
        return f'{head}; {tail}'
