"""Log the feature duplication of learnable group convolutions (FLGC)."""
from typing import List, Tuple

from mmengine.hooks import Hook

from mmgate.models.layers.learnable_group_conv import LearnableGroupConv2d
from mmgate.registry import HOOKS

__all__ = ['LearnableGroupStatsHook']


@HOOKS.register_module()
class LearnableGroupStatsHook(Hook):
    """Log the duplication of every learnable group conv
    (:class:`~mmgate.models.layers.LearnableGroupConv2d`).

    After every training iteration the total number of duplicated channels
    goes to the message hub as ``train/flgc_duplicates`` (so it appears in
    the training log line); every ``interval`` iterations the per-layer
    counts are written to the log. In a config:
    ``custom_hooks = [dict(type='mmgate.LearnableGroupStatsHook')]``.

    Args:
        interval (int): Iterations between per-layer log lines.
            Defaults to 500.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 500) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be an int >= 1, got {interval!r}')
        self.interval = interval

    def _layers(self, runner) -> List[Tuple[str, LearnableGroupConv2d]]:
        model = runner.model
        model = getattr(model, 'module', model)
        return [(n, m) for n, m in model.named_modules()
                if isinstance(m, LearnableGroupConv2d)]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        layers = self._layers(runner)
        if not layers:
            return
        counts = {n: int(m.num_duplicates) for n, m in layers}
        runner.message_hub.update_scalar('train/flgc_duplicates',
                                         sum(counts.values()))
        if self.every_n_train_iters(runner, self.interval):
            body = ', '.join(f'{n}={c}' for n, c in counts.items())
            runner.logger.info(f'FLGC duplicated channels per layer: {body}')
