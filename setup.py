"""Install dyt_mm with a ``.mim`` folder (tools, configs, model-index.yml), as OpenMMLab
packages do.

``mim train dyt_mm CONFIG`` looks for ``<site-packages>/dyt_mm/.mim/tools/train.py``
and ``.mim/configs``, ``mim search dyt_mm`` for ``.mim/model-index.yml`` (which imports
``configs/*/metafile.yml``); they are copied there at build time. mim locates a package
through its distribution's location, which for PEP 660 editable installs is
site-packages, so the Makefile installs a regular (non-editable) copy and
re-installs it whenever a source file changes.
"""
import os
import shutil

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
MIM_FOLDERS = ('tools', 'configs')
MIM_FILES = ('model-index.yml',)


def add_mim_extension():
    mim_root = os.path.join(HERE, 'dyt_mm', '.mim')
    for folder in MIM_FOLDERS:
        src, dst = os.path.join(HERE, folder), os.path.join(mim_root, folder)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for name in MIM_FILES:
        os.makedirs(mim_root, exist_ok=True)
        shutil.copyfile(os.path.join(HERE, name), os.path.join(mim_root, name))


def mim_package_data():
    files = []
    root = os.path.join(HERE, 'dyt_mm')
    for folder in MIM_FOLDERS:
        for dirpath, _, names in os.walk(os.path.join(root, '.mim', folder)):
            files += [os.path.relpath(os.path.join(dirpath, n), root) for n in names]
    return files + [os.path.join('.mim', name) for name in MIM_FILES]


add_mim_extension()
setup(
    name='dyt_mm',
    version='0.1.0',
    description='Dynamic Tuning (DyT) for ViT adaptation on mmpretrain, mmsegmentation and '
    'mmaction2',
    long_description=open(os.path.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['dyt_mm', 'dyt_mm.*']),
    package_data={'dyt_mm': mim_package_data()},
    include_package_data=False,
    install_requires=[
        'torch>=2.0', 'mmengine>=0.10,<1.0', 'mmcv-lite>=2.0,<2.2', 'mmpretrain>=1.2,<1.3',
        'mmsegmentation>=1.2,<1.3', 'mmaction2>=1.2,<1.3', 'ftfy', 'regex', 'safetensors',
        'matplotlib'
    ],
    extras_require={
        # torch.onnx's exporter and ONNX Runtime for dyt_mm/deploy and tools/deploy
        'deploy': ['onnx', 'onnxscript', 'onnxruntime'],
        # the Sphinx site in docs/ (`make docs`)
        'docs': ['sphinx', 'myst-parser', 'furo'],
        # mmengine's TensorboardVisBackend (docs/logs.md)
        'tensorboard': ['tensorboard'],
    },
    zip_safe=False,
)
