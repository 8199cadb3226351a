"""mmgate: Gate-Module backbones (SkipResNet, DenseResNet, ...) for OpenMMLab.

The versions mmgate is tested with are pinned in tools/env/constraints.txt;
`bash tools/setup_env.sh` installs exactly those (mmcv is built from source
with its C++ ops, see README.md). install_requires only states the ranges the
code needs, so that the package can also join an existing OpenMMLab stack.

The model index (model-index.yml and the configs/<family>/metafile.yml it
imports) travels with the package as OpenMMLab's packages ship it, under
mmgate/.mim/: `mim search mmgate` (openmim) reads it from there. An editable
install (`pip install -e .`, what tools/setup_env.sh does) links
mmgate/.mim/{model-index.yml,configs,tools} to the files of the checkout; a
wheel or sdist gets copies.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import Extension, find_packages, setup

MIM_FILES = ('model-index.yml', 'configs', 'tools')


def get_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmgate', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension():
    """Put the model index, configs and tools under mmgate/.mim/, as
    MMDetection's setup.py does (``add_mim_extension``): symbolic links for
    an editable install, copies for a wheel or a source package."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'  # pip install -e (setup.py develop / PEP 660)
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(root, 'mmgate', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(root, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


# The fused junction's CPU kernel (mmgate/ops/fused_junction.py): plain C,
# no torch headers, loaded through ctypes. Optional: without a compiler the
# package installs and the gates run on the eager PyTorch path (logged).
FUSED_JUNCTION = Extension(
    'mmgate.ops._fused_junction',
    sources=['mmgate/ops/csrc/fused_junction.c'],
    extra_compile_args=['-O3', '-g0', '-std=gnu99'],
    optional=True)

add_mim_extension()
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
    package_data={
        'mmgate': [
            '.mim/model-index.yml', '.mim/configs/**/*.py',
            '.mim/configs/**/*.yml', '.mim/configs/**/*.md',
            '.mim/tools/**/*.py', '.mim/tools/**/*.sh'
        ]
    },
    ext_modules=[FUSED_JUNCTION],
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
        'tests': ['pytest', 'imgviz', 'matplotlib', 'openmim', 'onnx',
                  'onnxruntime', 'flake8', 'isort', 'yapf'],
    },
    entry_points={
        'console_scripts': ['mmgate-finetune=mmgate.finetune:main'],
    },
    zip_safe=False,
)
