"""Building the backbones by ``type='mmgate.…'`` from the downstream
projects' registries, with and without custom_imports."""
import subprocess
import sys

import pytest
import torch

TINY = {
    'SkipResNet': dict(depth=18, base_channels=8),
    'SkipResNetV1c': dict(depth=18, base_channels=8),
    'SkipResNetV1d': dict(depth=50, base_channels=8),
    'SkipResNeXt':
    dict(depth=50, groups=2, width_per_group=4, base_channels=8),
    'SkipConvNeXt':
    dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])),
}


def test_import_does_not_pull_in_downstream_projects():
    code = ('import sys, mmgate.models; '
            'bad = [m for m in ("mmdet", "mmseg", "mmpretrain") '
            'if m in sys.modules]; print(bad); sys.exit(bool(bad))')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('project', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('name', sorted(TINY))
def test_build_by_scoped_type(project, name):
    """No custom_imports: the scope prefix alone finds mmgate."""
    registry = __import__(f'{project}.registry', fromlist=['MODELS']).MODELS
    from mmengine.registry import DefaultScope
    scope = DefaultScope.get_instance(
        f'test-{project}-{name}', scope_name=project)
    assert scope.scope_name == project
    model = registry.build(dict(type=f'mmgate.{name}', **TINY[name]))
    assert type(model).__name__ == name
    model.eval()
    assert model(torch.rand(1, 3, 32, 32))


def test_custom_imports_in_a_fresh_process():
    code = '''
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS
cfg = Config(dict(custom_imports=dict(imports=['mmgate.models'],
                                      allow_failed_imports=False),
                  backbone=dict(type='mmgate.SkipResNet', depth=18)))
init_default_scope('mmdet')
from mmengine.utils import import_modules_from_strings
import_modules_from_strings(**cfg.custom_imports)
print(type(MODELS.build(cfg.backbone)).__name__)
'''
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith('SkipResNet')


def test_unknown_type_and_key_are_named():
    from mmdet.registry import MODELS
    with pytest.raises(KeyError, match='SkipResNot'):
        MODELS.build(dict(type='mmgate.SkipResNot', depth=50))
    with pytest.raises(TypeError, match='no_such_key'):
        MODELS.build(
            dict(type='mmgate.SkipResNet', depth=18, no_such_key=True))
