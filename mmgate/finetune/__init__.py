"""Fine-tune a gated backbone on your own dataset folder, in one command,
and compare it with its plain twin over seeds.

    mmgate-finetune DATA_DIR --task det --backbone skipresnet50
    python tools/finetune.py data/trees --task det \\
        --backbone skipresnet18 --epochs 1
    python tools/finetune.py data/demo/coco --task det \\
        --backbone skipresnet18 --seeds 3 --compare base

The package has one module per job:

- :mod:`.recipes`: the recipes (:data:`RECIPES`), the backbones and their
  plain twins (from the metafiles), the choice of a recipe that fits the
  annotations, the schedule scaled to the dataset;
- :mod:`.render`: the text of the written configs;
- :mod:`.run`: the command (:func:`run`): read the data
  (:mod:`mmgate.datasets`), check, write, train and test through
  :mod:`mmgate.apis`, report (:mod:`mmgate.analysis.report`).

Nothing here imports MMDetection, MMSegmentation or MMPretrain at import
time; reading a recipe config does, inside the functions.
"""
from .recipes import (CPU_BACKBONES, RECIPES, Recipe, RecipeSource, Schedule,
                      backbone_choices, choose_recipe, load_config, plain_twin,
                      resolve_recipe, scale_schedule, schedule_of)
from .render import render_config, render_twin_config
from .run import (describe_weights, main, parse_args, plan_configs, run,
                  test_command, train_command, write_config)

__all__ = [
    'RECIPES', 'Recipe', 'CPU_BACKBONES', 'RecipeSource', 'Schedule',
    'backbone_choices', 'choose_recipe', 'load_config', 'plain_twin',
    'resolve_recipe', 'scale_schedule', 'schedule_of', 'render_config',
    'render_twin_config', 'plan_configs', 'write_config', 'train_command',
    'test_command', 'describe_weights', 'parse_args', 'run', 'main'
]
