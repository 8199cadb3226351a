"""Write ``tests/data/backbone_refs.pt``: for tiny builds of every mmgate
backbone, the state-dict layout (key -> shape) and the outputs in eval and
train mode for weights and inputs drawn from fixed seeds
(:func:`fill_state_dict`, :func:`make_input`).

``tests/test_models/test_backbones/test_backbone_refs.py`` builds each
backbone again, checks the layout, loads the seeded weights strictly and
compares the outputs: the proof that a refactoring kept the weight layout
and the arithmetic. Regenerate only on purpose (a deliberate change of
layout or numbers), with the code whose behaviour is the reference::

    python tools/misc/make_backbone_refs.py tests/data/backbone_refs.pt

``--fp64`` writes the float64 references instead
(``tests/data/backbone_refs_fp64.pt``): the outputs in both modes and the
gradients of a training step (:func:`gradients`, fingerprinted per
parameter by :func:`fingerprint`), for seeded weights. In float64 rounding
no longer hides behind the tolerance, so a change of arithmetic (a fused
kernel, a folded norm) is checked to about 1e-9 even where float32 is
ill-conditioned (BatchNorm over two samples). The float64 references were
written with the code before the fused junction (commit 59f7e51), except
the ``priorpool_*`` cases: the prior pools computed in fp32 even in a
float64 model, whose float32 reductions round differently on another CPU;
they compute in float64 now, and those cases were rewritten with
``--cases`` (they agree with the float32 references within float32's
error, which the float32 test checks)::

    python tools/misc/make_backbone_refs.py --fp64 \
        tests/data/backbone_refs_fp64.pt --cases priorpool_resnet18_post ...
"""
import argparse

import torch

CASES = {
    'skipresnet18':
    dict(type='SkipResNet', depth=18, base_channels=4),
    'skipresnet50':
    dict(type='SkipResNet', depth=50, base_channels=4),
    'skipresnet50_v1d_os8':
    dict(
        type='SkipResNetV1d',
        depth=50,
        base_channels=4,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=True),
    'skipresnet34_v1c_3stages':
    dict(
        type='SkipResNetV1c',
        depth=34,
        base_channels=4,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(0, 2)),
    'skipresnext50':
    dict(
        type='SkipResNeXt',
        depth=50,
        groups=2,
        width_per_group=2,
        base_channels=4),
    'skipconvnext':
    dict(
        type='SkipConvNeXt',
        arch=dict(depths=[2, 2, 5, 2], channels=[8, 8, 16, 16]),
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False),
    'denseresnet18_n4':
    dict(type='DenseResNet', depth=18, base_channels=4, num_connections=4),
    'denseresnet50_n2_paper':
    dict(
        type='DenseResNet',
        depth=50,
        base_channels=4,
        num_connections=2,
        pad_mode='paper'),
    'denseresnet_cifar20':
    dict(type='DenseResNetCIFAR', depth=20, base_channels=4, gate_reduction=2),
    'dense_mobilenetv2':
    dict(type='DenseMobileNetV2', widen_factor=0.25, out_indices=(1, 2, 4, 7)),
    'priorpool_skipresnet18_post':
    dict(type='PriorPoolSkipResNet', depth=18, base_channels=4),
    'priorpool_skipresnet50_pre':
    dict(
        type='PriorPoolSkipResNet',
        depth=50,
        base_channels=4,
        pool_placement='pre'),
    'priorpool_skipresnext50_maxent':
    dict(
        type='PriorPoolSkipResNeXt',
        depth=50,
        groups=2,
        width_per_group=2,
        base_channels=4,
        pool_cfg=dict(type='MaxEntPool2d')),
    'priorpool_resnet18_post':
    dict(type='PriorPoolResNet', depth=18, base_channels=4),
    'priorpool_resnet50_pre':
    dict(
        type='PriorPoolResNet',
        depth=50,
        base_channels=4,
        pool_placement='pre'),
    'plain_resnet50_cifar':
    dict(
        type='PriorPoolResNet',
        depth=50,
        base_channels=4,
        pool_cfg=None,
        cifar_stem=True),
    'plain_resnext50':
    dict(
        type='PriorPoolResNeXt',
        depth=50,
        groups=2,
        width_per_group=2,
        base_channels=4,
        pool_cfg=None),
}


def fill_state_dict(model: torch.nn.Module, reference_key=None) -> dict:
    """Values for every entry of ``model``'s state dict, drawn from a seed
    in sorted key order (so they do not depend on module order): random
    weights (zero-init residual branches and unit norms would hide most of
    the arithmetic), positive running variances. ``reference_key(key)``
    maps a key renamed on purpose to its name in the references, whose
    order decides the values."""
    gen = torch.Generator().manual_seed(0)
    rename = reference_key or (lambda key: key)
    state = {}
    for key, ref in sorted(
            model.state_dict().items(), key=lambda item: rename(item[0])):
        if not ref.is_floating_point():
            state[key] = ref.clone()
        elif key.endswith('running_var'):
            state[key] = torch.rand(ref.shape, generator=gen) + 0.5
        elif key.endswith('running_mean'):
            state[key] = torch.randn(ref.shape, generator=gen) * 0.1
        else:
            state[key] = torch.randn(ref.shape, generator=gen) * 0.5
    return state


def make_input(cfg: dict) -> torch.Tensor:
    size = 16 if 'CIFAR' in cfg['type'] or cfg.get('cifar_stem') else 40
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, size, size, generator=gen)


def run(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Outputs in eval mode and (seeded, for the pools' noise) train mode."""
    model.eval()
    with torch.no_grad():
        out_eval = [o.clone() for o in model(x)]
    model.train()
    torch.manual_seed(2)
    with torch.no_grad():
        out_train = [o.clone() for o in model(x)]
    return dict(out_eval=out_eval, out_train=out_train)


def fingerprint(grad: torch.Tensor) -> torch.Tensor:
    """Three numbers that change with any change of ``grad``: its sum, its
    L1 norm and its projection on a seeded random tensor of its shape."""
    gen = torch.Generator().manual_seed(4)
    r = torch.randn(grad.shape, generator=gen, dtype=grad.dtype)
    return torch.stack([grad.sum(), grad.abs().sum(), (grad * r).sum()])


def gradients(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Parameter fingerprints and the input gradient of one training-mode
    step on ``loss = sum_i <out_i, r_i>`` (seeded ``r_i``)."""
    model.train()
    torch.manual_seed(2)
    x = x.clone().requires_grad_(True)
    outs = model(x)
    gen = torch.Generator().manual_seed(3)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
               for o in outs)
    loss.backward()
    grads = {
        k: fingerprint(p.grad)
        for k, p in model.named_parameters() if p.grad is not None
    }
    grads['input'] = x.grad
    return grads


def make_fp64(case: dict) -> dict:
    """Float64 outputs (eval, train) and gradients of a seeded build."""
    import mmgate.models  # noqa: F401
    from mmgate.registry import MODELS

    def build():
        model = MODELS.build(dict(case, type='mmgate.' + case['type']))
        model.load_state_dict(fill_state_dict(model), strict=True)
        return model.double()

    x = make_input(case).double()
    return dict(**run(build(), x), grads=gradients(build(), x))


def make(case: dict) -> dict:
    import mmgate.models  # noqa: F401
    from mmgate.registry import MODELS
    model = MODELS.build(dict(case, type='mmgate.' + case['type']))
    model.load_state_dict(fill_state_dict(model), strict=True)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return dict(cfg=case, layout=layout, **run(model, make_input(case)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out')
    parser.add_argument(
        '--fp64',
        action='store_true',
        help='float64 outputs and gradient fingerprints')
    parser.add_argument(
        '--cases',
        nargs='+',
        metavar='NAME',
        help='rewrite only these cases in the existing file OUT')
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the tests run: the same reduction order
    fn = make_fp64 if args.fp64 else make
    unknown = sorted(set(args.cases or ()) - set(CASES))
    if unknown:
        parser.error(f'unknown cases {unknown}; known: {sorted(CASES)}')
    names = args.cases or list(CASES)
    refs = torch.load(args.out, weights_only=True) if args.cases else {}
    refs.update({name: fn(CASES[name]) for name in names})
    torch.save(refs, args.out)
    print(f'wrote {len(names)} of {len(refs)} references to {args.out}')


if __name__ == '__main__':
    main()
