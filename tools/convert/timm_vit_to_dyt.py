"""Convert a timm or Google/JAX ViT (or a timm Swin) checkpoint to the DyT backbone naming.

    python tools/convert/timm_vit_to_dyt.py SRC DST [--img-size 224] [--force]
        [--arch ARCH] [--model FAMILY] [--patch-size P] [--no-class-token]

SRC is a timm ``.pth`` (tensors only: no pickled code is run), a ``.safetensors`` file
or a Google/JAX ``.npz``. The family (plain ViT/DeiT, DeiT distilled, MAE, CLIP,
DINOv2 with or without registers, EVA-02) and the architecture (width, depth,
heads from timm's standard widths, MLP ratio, patch size, prefix tokens,
LayerScale, registers, SwiGLU/RoPE) are read off the checkpoint and printed;
``--arch`` (a preset: tiny, small, base, large, huge, or
``embed_dims=64,depth=2,num_heads=4[,mlp_ratio=4]``), ``--model`` (a family),
``--patch-size`` and ``--no-class-token`` override what was found. A checkpoint
of another family is an error naming what was found.

A Swin Transformer (timm's ``swin_*`` layout, or Microsoft's original one with
patch merging at the end of each stage) converts to ``DyTSwin`` (backbone
``DyTSwinTransformer``): widths, depths, heads and the window are read off it;
``--arch``, ``--model``, ``--patch-size`` and ``--no-class-token`` do not apply.

The classification head is dropped and the position embeddings are resized
(bicubic) from the pre-training grid to ``--img-size``. DST holds
``{'state_dict': ..., 'meta': {'source', 'family', 'arch', 'img_size',
'patch_size', 'vit'}}``, where ``vit`` are the options of ``DyTViT`` (and of
the backbone config) that the weights need; it loads with
``torch.load(DST, weights_only=True)``. An existing DST is only replaced with
``--force``, and never by SRC itself.

Example (ViT-B/16, ImageNet-21K, as in the DyT paper)::

    python tools/convert/timm_vit_to_dyt.py \\
        jx_vit_base_patch16_224_in21k-e5005f0a.pth checkpoints/vit-b16-in21k_dyt.pth
"""
import argparse
import inspect
import os
import os.path as osp
import pickle
import sys

# In a checkout, run the dyt_mm beside this script, not the installed copy (docs/environment.md).
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isfile(osp.join(CHECKOUT, 'dyt_mm', '__init__.py')):
    sys.path.insert(0, CHECKOUT)

import dyt_mm  # noqa: F401  (compatibility layer before torch and the toolboxes)

from dyt_mm.models.dyt import ARCH_PRESETS, DyTSwin, DyTViT
from dyt_mm.models.dyt.families import (FAMILIES, family_options, infer_swin_config,
                                        infer_vit_config, is_swin)
from dyt_mm.models.dyt.pretrained import convert_for
from dyt_mm.models.dyt.swin import SWIN_PRESETS
from dyt_mm.models.dyt.weight_names import to_vit_names
from dyt_mm.utils.checkpoint import atomic_save, read_weights

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
    parser.add_argument('--arch', type=parse_arch,
                        help='preset (tiny/small/base/large/huge) or '
                        'embed_dims=..,depth=..,num_heads=..[,mlp_ratio=..] (default: read off '
                        'the checkpoint)')
    parser.add_argument('--model', choices=FAMILIES,
                        help='the family, when the checkpoint cannot tell (e.g. clip: LAION '
                        'CLIP with GELU, not OpenAI\'s QuickGELU)')
    parser.add_argument('--patch-size', type=int, help='default: the checkpoint\'s')
    parser.add_argument('--img-size', type=int, default=224,
                        help='target resolution; position embeddings are resized to it')
    parser.add_argument('--no-class-token', action='store_true',
                        help='the source ViT has no class token')
    parser.add_argument('--force', action='store_true', help='overwrite an existing DST')
    return parser.parse_args(argv)


def preset_name(arch: dict):
    """The preset an inferred arch is, else the arch itself."""
    return next((name for name, dims in ARCH_PRESETS.items()
                 if dict(dims, mlp_ratio=4.0) == arch), arch)


def describe(family: str, options: dict) -> str:
    arch = options['arch']
    arch_text = ', '.join(f'{k} {"?" if v is None else format(v, "g")}' for k, v in arch.items())
    prefix = [name for name, on in (('class token', options.get('class_token', True)),
                                    ('distillation token', options.get('dist_token'))) if on]
    if options.get('num_reg_tokens'):
        prefix.append(f'{options["num_reg_tokens"]} register tokens')
    flags = (('no_embed_class', 'no position embeddings for prefix tokens'),
             ('layer_scale', 'LayerScale'), ('pre_norm', 'norm before the blocks'),
             ('rope_ref_grid', '2-D RoPE'), ('fc_norm', 'fc-norm on pooled tokens'))
    extras = [text for key, text in flags if options.get(key)]
    if options.get('inner_norms'):
        extras.append(f'inner norms in {"+".join(options["inner_norms"])}')
    if options.get('mlp_act', 'gelu') != 'gelu':
        extras.append(f'{options["mlp_act"]} MLP')
    return (f'family {family}; arch {arch_text}; patch {options["patch_size"]}; '
            f'prefix: {", ".join(prefix) or "none"}'
            + (f'; {", ".join(extras)}' if extras else ''))


def convert(args) -> dict:
    """The converted checkpoint as a dict of plain types and tensors; prints what it found."""
    state = to_vit_names(read_weights(args.src))
    if is_swin(state):
        return convert_swin(args, state)
    family, options, notes = infer_vit_config(state)
    # the shape, and of the options only what differs from a DyTViT's defaults: what a
    # config must set
    defaults = inspect.signature(DyTViT).parameters
    options = {k: v for k, v in options.items()
               if k in ('arch', 'patch_size', 'img_size') or v != defaults[k].default}
    print(f'found in {os.path.basename(args.src)}: {describe(family, options)}; pre-trained at '
          f'{options.pop("img_size")} px')
    for note in notes:
        print(f'note: {note}')
    if args.model is not None:
        family = args.model
        options.update(family_options(family))
    if args.arch is not None:
        options['arch'] = args.arch
    elif options['arch']['num_heads'] is None:
        raise ValueError(f'cannot tell the number of heads of width '
                         f'{options["arch"]["embed_dims"]}; pass --arch with num_heads')
    else:
        options['arch'] = preset_name(options['arch'])
    if args.patch_size is not None:
        options['patch_size'] = args.patch_size
    if args.no_class_token:
        options['class_token'] = False
    model = DyTViT(img_size=args.img_size, freeze_base=False, **options)
    return checked_checkpoint(args, model, state, family, options)


def convert_swin(args, state) -> dict:
    """A Swin checkpoint for ``DyTSwin``; only ``--img-size`` applies."""
    given = [flag for flag, value in (('--arch', args.arch), ('--model', args.model),
                                      ('--patch-size', args.patch_size),
                                      ('--no-class-token', args.no_class_token)) if value]
    if given:
        raise ValueError(f'{args.src} is a Swin checkpoint: its architecture is read off it, '
                         f'{", ".join(given)} do(es) not apply')
    family, options, notes = infer_swin_config(state)
    arch = options['arch']
    print(f'found in {os.path.basename(args.src)}: family swin; embed_dims '
          f'{arch["embed_dims"]}, depths {arch["depths"]}, heads {arch["num_heads"]}, patch '
          f'{options["patch_size"]}, window {options["window_size"]}; pre-trained at '
          f'{options.pop("img_size")} px')
    for note in notes:
        print(f'note: {note}')
    options['arch'] = next((name for name, dims in SWIN_PRESETS.items() if dims == arch), arch)
    model = DyTSwin(img_size=args.img_size, freeze_base=False, **options)
    return checked_checkpoint(args, model, state, family, options)


def checked_checkpoint(args, model, state, family: str, options: dict) -> dict:
    """``state`` checked against ``model`` key by key, with what a config must set."""
    state = convert_for(model, state)
    # contiguous copies: views of a larger source tensor would save all of it
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    vit = {k: v for k, v in options.items() if k not in ('arch', 'patch_size')}
    meta = dict(source=os.path.basename(args.src), family=family, arch=options['arch'],
                img_size=args.img_size, patch_size=options['patch_size'], vit=vit)
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
    meta = checkpoint['meta']
    pos_embed = f', pos_embed {tuple(state["pos_embed"].shape)}' if 'pos_embed' in state else ''
    print(f'converted {args.src} -> {args.dst}: {len(state)} tensors, {params / 1e6:.2f} M '
          f'parameters, {meta["family"]}, arch {meta["arch"]}, patch {meta["patch_size"]}, '
          f'img_size {args.img_size}{pos_embed}')
    if meta['vit']:
        print(f'backbone options these weights need: {meta["vit"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
