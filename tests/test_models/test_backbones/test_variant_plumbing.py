"""How the backbone variants are put together: a variant is constructor
arguments and class attributes that the subclass sets (no base names its
subclasses), the families share the gate helpers of ``layers/gate.py``, and
a class refuses the family arguments it fixes."""
import ast
import inspect

import pytest
import torch

from mmgate.models import DenseResNet, SkipResNet
from mmgate.models.backbones import (dense_mobilenet_v2, resnet_base,
                                     skip_convnext)
from mmgate.models.layers import gate


class LastFourResNet(SkipResNet):
    """A user's own variant: SkipResNet's gates reading the dense pattern,
    set as a class attribute (nothing in SkipResNet knows of it)."""

    pattern = 'dense'
    family_args = ('num_connections', )


def test_a_subclass_sets_its_pattern_as_a_class_attribute():
    mine = LastFourResNet(depth=18, base_channels=8, num_connections=3)
    dense = DenseResNet(depth=18, base_channels=8, num_connections=3)
    assert mine.pattern == dense.pattern == 'dense'
    assert [
        b.inbound_indices for s in (mine.layer2, mine.layer3) for b in s
    ] == [b.inbound_indices for s in (dense.layer2, dense.layer3) for b in s]
    assert {k: v.shape for k, v in mine.state_dict().items()} == \
        {k: v.shape for k, v in dense.state_dict().items()}
    mine.load_state_dict(dense.state_dict())
    x = torch.rand(1, 3, 32, 32)
    for a, b in zip(mine.eval()(x), dense.eval()(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('cls,name,value',
                         [(SkipResNet, 'pattern', 'dense'),
                          (DenseResNet, 'pattern', 'skip'),
                          (LastFourResNet, 'pad_mode', 'paper')])
def test_a_class_refuses_the_family_arguments_it_fixes(cls, name, value):
    with pytest.raises(TypeError) as err:
        cls(depth=18, base_channels=8, **{name: value})
    assert str(err.value) == (f'{cls.__name__}.__init__() got an unexpected '
                              f'keyword argument {name!r}')


def _imported_names(module) -> dict:
    """``{name: module it is imported from}`` of ``module``'s imports."""
    tree = ast.parse(inspect.getsource(module))
    return {
        alias.name: node.module
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


@pytest.mark.parametrize('module', [skip_convnext, dense_mobilenet_v2])
def test_families_take_the_gate_helpers_from_layers_gate(module):
    names = _imported_names(module)
    assert names['gate_cfg_of'] == 'layers.gate'
    assert 'skip_resnet' not in names.values()
    assert module.gate_cfg_of is gate.gate_cfg_of


def test_constructor_checks_are_named_helpers():
    """``RoutedResNet.__init__`` delegates its argument checks: each check
    helper raises the message the tests of the backbones assert."""
    with pytest.raises(
            ValueError,
            match=r"pattern must be one of \('skip', "
            r"'dense'\), got 'ring'"):
        resnet_base._check_pattern_args('ring', 4, 'masked')
    with pytest.raises(ValueError, match='num_connections'):
        resnet_base._check_pattern_args('dense', 0, 'masked')
    with pytest.raises(
            AssertionError, match=r'out_indices \(4,\) out of range for 4'):
        resnet_base._check_stage_args(4, (1, 2, 2, 2), (1, 1, 1, 1), (4, ), -1,
                                      None, ())
    assert resnet_base._check_stage_args(3, (1, 2, 2), (1, 1, 1), (-1, ), -1,
                                         None, ()) == (2, )
    with pytest.raises(
            ValueError,
            match='multi_grid needs one dilation per '
            r'block of the last stage \(3\), got \(1, 2\)'):
        resnet_base._check_multi_grid((1, 2), 3)
    assert resnet_base._width_per_group(None, 8) == 8
    source = inspect.getsource(resnet_base.RoutedResNet.__init__)
    assert 'assert ' not in source and 'raise ' not in source
