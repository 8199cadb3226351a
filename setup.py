"""mmgate: Gate-Module backbones (SkipResNet, DenseResNet, ...) for OpenMMLab.

The versions mmgate is tested with are pinned in tools/env/constraints.txt;
`bash tools/setup_env.sh` installs exactly those (mmcv is built from source
with its C++ ops, see README.md). install_requires only states the ranges the
code needs, so that the package can also join an existing OpenMMLab stack.
"""
import os.path as osp

from setuptools import find_packages, setup


def get_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmgate', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmgate',
    version=get_version(),
    description='Gate-Module backbones (SkipResNet, SkipResNeXt, '
    'SkipConvNeXt, DenseResNet) for MMDetection, MMSegmentation, MMPretrain',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['mmgate', 'mmgate.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=1.13',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0,<2.2.0',
        'numpy',
    ],
    extras_require={
        'det': ['mmdet>=3.2.0,<3.4.0'],
        'seg': ['mmsegmentation>=1.2.0,<1.3.0', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.2.0,<1.3.0'],
        'tests': ['pytest', 'imgviz', 'matplotlib'],
    },
    zip_safe=False,
)
