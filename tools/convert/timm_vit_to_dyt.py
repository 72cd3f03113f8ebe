"""Convert a timm or Google/JAX ViT checkpoint to the DyT backbone naming.

    python tools/convert/timm_vit_to_dyt.py SRC DST [--arch base] [--patch-size 16]
                                            [--img-size 224] [--no-class-token] [--force]

SRC is a timm ``.pth`` (tensors only: no pickled code is run), a ``.safetensors`` file
or a Google/JAX ``.npz``. ``--arch`` is a preset (tiny, small, base, large, huge)
or explicit dims such as ``embed_dims=64,depth=2,num_heads=4[,mlp_ratio=4]``.
The classification head is dropped and the position embeddings are resized
(bicubic) when ``--img-size`` differs from the source's. DST holds
``{'state_dict': ..., 'meta': {'source', 'arch', 'img_size', 'patch_size'}}``
and loads with ``torch.load(DST, weights_only=True)``; an existing DST is only
replaced with ``--force``, and never by SRC itself.

Example (ViT-B/16, ImageNet-21K, as in the DyT paper)::

    python tools/convert/timm_vit_to_dyt.py \\
        jx_vit_base_patch16_224_in21k-e5005f0a.pth checkpoints/vit-b16-in21k_dyt.pth
"""
import argparse
import os
import os.path as osp
import pickle
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before torch and the toolboxes)

from dyt_mm.models.dyt import ARCH_PRESETS, DyTViT
from dyt_mm.models.dyt.pretrained import convert_for
from dyt_mm.utils.checkpoint import atomic_save

_ARCH_KEYS = {'embed_dims': int, 'depth': int, 'num_heads': int, 'mlp_ratio': float}


def parse_arch(text: str):
    """A preset name, or ``key=value`` pairs separated by commas."""
    if text in ARCH_PRESETS:
        return text
    if '=' not in text:
        raise argparse.ArgumentTypeError(
            f'unknown arch {text!r}; use one of {", ".join(ARCH_PRESETS)} or '
            'embed_dims=..,depth=..,num_heads=..[,mlp_ratio=..]')
    spec = {}
    for item in text.split(','):
        key, _, value = item.partition('=')
        key = key.strip()
        if key not in _ARCH_KEYS:
            raise argparse.ArgumentTypeError(
                f'unknown arch field {key!r} in {text!r}; allowed: {", ".join(_ARCH_KEYS)}')
        try:
            spec[key] = _ARCH_KEYS[key](value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'bad value {value!r} for {key} in {text!r}') from None
    return spec


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a timm/JAX ViT checkpoint (.pth, .npz, .safetensors) to the '
        'DyT backbone naming')
    parser.add_argument('src', metavar='SRC', help='timm .pth / .safetensors or JAX .npz')
    parser.add_argument('dst', metavar='DST', help='output .pth')
    parser.add_argument('--arch', type=parse_arch, default='base',
                        help='preset (tiny/small/base/large/huge) or '
                        'embed_dims=..,depth=..,num_heads=..[,mlp_ratio=..] (default: base)')
    parser.add_argument('--patch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224,
                        help='target resolution; position embeddings are resized to it')
    parser.add_argument('--no-class-token', action='store_true',
                        help='the source ViT has no class token')
    parser.add_argument('--force', action='store_true', help='overwrite an existing DST')
    return parser.parse_args(argv)


def convert(args) -> dict:
    """The converted checkpoint as a dict of plain types and tensors."""
    model = DyTViT(args.arch, img_size=args.img_size, patch_size=args.patch_size,
                   class_token=not args.no_class_token, freeze_base=False)
    state = convert_for(model, args.src)
    # contiguous copies: views of a larger source tensor would save all of it
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    meta = dict(source=os.path.basename(args.src), arch=args.arch, img_size=args.img_size,
                patch_size=args.patch_size)
    return dict(state_dict=state, meta=meta)


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.abspath(args.src) == os.path.abspath(args.dst) or (
            os.path.exists(args.dst) and os.path.samefile(args.src, args.dst)):
        print(f'error: SRC and DST are the same file ({args.dst}); the converted weights must '
              'go to another file, so that the source is kept', file=sys.stderr)
        return 1
    if os.path.exists(args.dst) and not args.force:
        print(f'error: {args.dst} already exists; pass --force to overwrite it', file=sys.stderr)
        return 1
    try:
        checkpoint = convert(args)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyError as err:  # an incomplete JAX .npz
        print(f'error: {args.src} lacks the JAX ViT key {err}', file=sys.stderr)
        return 1
    except (ValueError, pickle.UnpicklingError, RuntimeError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    atomic_save(checkpoint, args.dst)
    state = checkpoint['state_dict']
    params = sum(v.numel() for v in state.values())
    print(f'converted {args.src} -> {args.dst}: {len(state)} tensors, {params / 1e6:.2f} M '
          f'parameters, arch {args.arch}, patch {args.patch_size}, img_size {args.img_size}, '
          f'pos_embed {tuple(state["pos_embed"].shape)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
