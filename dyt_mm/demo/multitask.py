"""Target domains for the multi-task demo, made from the digits demo's target domain.

Each domain is the digits target domain (coloured ink on a grainy background,
:mod:`.digits`) through one image transform, written in the same layout under
its own root, so that the digits target config serves every domain with only
``data_root`` changed::

    <root>/<domain>/target/{train,val}/<digit>/<index>.png
"""
import os
import os.path as osp
from typing import Callable, Dict, List

from PIL import Image, ImageFilter, ImageOps

# Transforms of the target images: each makes a domain a frozen ViT must be adapted to.
DOMAIN_TRANSFORMS: Dict[str, Callable[[Image.Image], Image.Image]] = {
    'target': lambda img: img,
    'mirrored': ImageOps.mirror,  # left-right: a 2 is no longer a 2 the source ViT knows
    'thick': lambda img: img.filter(ImageFilter.MaxFilter(3)),  # bright ink dilated
    'blurred': lambda img: img.filter(ImageFilter.GaussianBlur(1.2)),
}
_DONE = '.complete'


def write_domains(digits_root: str, root: str, domains: List[str]) -> Dict[str, str]:
    """Write each of ``domains`` (names of :data:`DOMAIN_TRANSFORMS`) from the digits target
    domain under ``digits_root``, once; returns each domain's data root."""
    unknown = [d for d in domains if d not in DOMAIN_TRANSFORMS]
    if unknown:
        raise ValueError(f'unknown domain(s) {unknown}; allowed: {", ".join(DOMAIN_TRANSFORMS)}')
    source = osp.join(digits_root, 'target')
    if not osp.isdir(source):
        raise FileNotFoundError(f'no digits target domain in {source}: write it with '
                                'dyt_mm.demo.digits.write_digits first')
    roots = {}
    for domain in domains:
        domain_root = osp.join(root, domain)
        roots[domain] = domain_root
        if osp.isfile(osp.join(domain_root, _DONE)):
            continue
        transform = DOMAIN_TRANSFORMS[domain]
        for folder, _, files in os.walk(source):
            out_folder = osp.join(domain_root, 'target', osp.relpath(folder, source))
            for name in sorted(f for f in files if f.endswith('.png')):
                os.makedirs(out_folder, exist_ok=True)
                with Image.open(osp.join(folder, name)) as img:
                    transform(img.convert('RGB')).save(osp.join(out_folder, name))
        open(osp.join(domain_root, _DONE), 'w').close()
    return roots


def val_files(domain_root: str) -> List[str]:
    """The validation images of a domain and their labels (the folder names), in order."""
    folder = osp.join(domain_root, 'target', 'val')
    return sorted(osp.join(folder, label, name) for label in os.listdir(folder)
                  for name in os.listdir(osp.join(folder, label)) if name.endswith('.png'))
