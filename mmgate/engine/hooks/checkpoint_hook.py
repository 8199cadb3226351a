"""MMEngine's ``CheckpointHook`` with an order of writes that survives a
kill or a full disk."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from mmgate.fileio import write_text_atomic
from mmgate.registry import HOOKS

__all__ = ['CheckpointHook']


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """MMEngine's ``CheckpointHook`` (same arguments) whose saves keep a
    usable checkpoint at every moment.

    MMEngine 0.10 deletes the checkpoint that ``max_keep_ckpts`` drops
    *before* it saves the new one, and writes ``last_checkpoint`` in place
    (empty for a moment). Here the new checkpoint is saved first (atomically,
    by :meth:`mmgate.engine.Runner.save_checkpoint`), then
    ``last_checkpoint`` is replaced atomically, and only then is the dropped
    checkpoint deleted. A save that fails (full disk, a non-finite model)
    raises before ``last_checkpoint`` or any older checkpoint is touched.

    :class:`mmgate.engine.Runner` uses it in place of MMEngine's
    ``CheckpointHook`` (the config's options are kept); in a config:
    ``default_hooks = dict(checkpoint=dict(type='mmgate.CheckpointHook',
    interval=1, max_keep_ckpts=2))``.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        # The body of MMEngine 0.10.7's method with the deletion moved after
        # the save and last_checkpoint written atomically.
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.file_backend.join_path(
                    self.out_dir,
                    self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        target = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        self.last_ckpt = target
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # model-parallel ranks other than the main one stop here, as in
        # MMEngine
        if not is_main_process():
            return
        write_text_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None and outdated != self.last_ckpt:
            if self.file_backend.isfile(outdated):
                self.file_backend.remove(outdated)
            elif self.file_backend.isdir(outdated):
                # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(outdated)
