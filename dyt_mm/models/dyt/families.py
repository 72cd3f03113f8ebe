"""Which pre-trained network a checkpoint holds, read off its tensors.

Supported: the plain ViT (Google IN-21K, AugReg, DeiT, MAE pre-training),
DeiT distilled, MAE fine-tuned (global pooling + fc-norm), CLIP (pre-norm),
DINOv2 (LayerScale, optional registers) and EVA-02 (SwiGLU, 2-D RoPE). Each
maps onto options of the one :class:`~.vit.DyTViT`; :func:`infer_vit_config`
returns them. Swin Transformers map onto :class:`~.swin.DyTSwin`:
:func:`is_swin`, :func:`infer_swin_config`.

Dict in, options out: no network is imported here. The tensors are expected in
the networks' naming, which :mod:`.weight_names` gives any supported checkpoint.
"""
import re
from typing import Dict, List, Tuple

import torch

StateDict = Dict[str, torch.Tensor]
FAMILIES = ('vit', 'deit-distilled', 'mae', 'clip', 'clip-quickgelu', 'dinov2', 'eva02')
# timm's standard widths -> heads (tiny, small, base, large, huge, giant)
HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16, 1536: 24}
# timm builds every EVA-02 with RoPE positions on the 224 / 14 pre-training grid
EVA02_ROPE_REF_GRID = (16, 16)
_EVA_KEYS = re.compile(r'blocks\.\d+\.(attn\.(q_proj|q_bias)|gamma_1)')
# signs of ViT families this package cannot compute exactly
_UNSUPPORTED = {
    'relative_position_bias_table': 'relative position bias (BEiT)',
    'attn.q_norm.weight': 'query/key normalisation (qk_norm)',
    'attn_pool.': 'attention pooling head (SigLIP MAP)',
    'layers.': 'blocks named layers.N (Swin/PVT, or mmpretrain/mmseg ViT naming)',
    'stages.': 'convolutional stages (ConvNeXt/ResNet/hybrid)',
    'patch_embed.backbone.': 'hybrid CNN stem',
}


class UnsupportedCheckpoint(ValueError):
    """A checkpoint of a model that the DyT ViT cannot compute exactly."""


def is_eva(state: StateDict) -> bool:
    return any(_EVA_KEYS.match(k) for k in state)


def _square_side(n: int) -> int:
    side = int(round(n**0.5))
    return side if side * side == n and n > 0 else 0


def infer_vit_config(state: StateDict) -> Tuple[str, dict, List[str]]:
    """``(family, DyTViT keyword arguments, notes)`` of a state dict in timm ViT
    naming (after :func:`~.weight_names.to_vit_names`, head weights dropped): every
    option the tensors show, whether or not it is the ViT's default.

    Raises :class:`UnsupportedCheckpoint` naming what was found when the
    checkpoint is not one of :data:`FAMILIES`.
    """
    for key, what in _UNSUPPORTED.items():
        hits = [k for k in state if key in k]
        if hits:
            raise UnsupportedCheckpoint(
                f'unsupported ViT checkpoint: found {what} ({hits[0]!r}); supported families: '
                f'{", ".join(FAMILIES)}')
    needed = ('patch_embed.proj.weight', 'pos_embed', 'blocks.0.attn.qkv.weight',
              'blocks.0.mlp.fc2.weight')
    missing = [k for k in needed if k not in state]
    if missing:
        sample = ', '.join(sorted(state)[:6])
        raise UnsupportedCheckpoint(
            f'not a plain ViT checkpoint: no {", ".join(missing)} (found keys like {sample}); '
            f'supported families: {", ".join(FAMILIES)}')
    embed_dims, _, patch, _ = state['patch_embed.proj.weight'].shape
    depth = 1 + max(int(m.group(1)) for k in state for m in [re.match(r'blocks\.(\d+)\.', k)] if m)
    fc2 = state['blocks.0.mlp.fc2.weight']
    # num_heads None: not one of timm's standard widths, the caller must say
    arch = dict(embed_dims=embed_dims, depth=depth, num_heads=HEADS_BY_WIDTH.get(embed_dims),
                mlp_ratio=fc2.shape[1] / embed_dims)
    notes = []
    num_reg = state['reg_token'].shape[1] if 'reg_token' in state else 0
    options = dict(class_token='cls_token' in state, dist_token='dist_token' in state,
                   num_reg_tokens=num_reg, qkv_bias='blocks.0.attn.qkv.bias' in state)
    num_prefix = options['class_token'] + options['dist_token'] + num_reg
    num_pos = state['pos_embed'].shape[1]
    if _square_side(num_pos - num_prefix):
        side = _square_side(num_pos - num_prefix)
    elif _square_side(num_pos):
        side, options['no_embed_class'] = _square_side(num_pos), True
    elif not num_prefix and _square_side(num_pos - 1):
        side = _square_side(num_pos - 1)  # ViTDet: the class token's embedding, not the token
    else:
        raise UnsupportedCheckpoint(f'position embeddings of {num_pos} entries with {num_prefix} '
                                    'prefix tokens do not form a square grid')
    img_size = side * patch

    options.update(_vitdet_layout(state, depth))
    gated = 'blocks.0.mlp.fc1_g.weight' in state
    if 'blocks.0.ls1.gamma' in state:
        options['layer_scale'] = 1e-5  # the value only matters for fresh weights
    if 'norm_pre.weight' in state:
        options['pre_norm'] = True
    if 'fc_norm.weight' in state and 'norm.weight' not in state:
        options['fc_norm'] = True
    if gated:
        inner_norms = tuple(where for where in ('attn', 'mlp')
                            if f'blocks.0.{where}.norm.weight' in state)
        options.update(mlp_act='swiglu', rope_ref_grid=EVA02_ROPE_REF_GRID,
                       inner_norms=inner_norms)
        family = 'eva02'
    elif options.get('pre_norm'):
        family = 'clip'
        options.update(norm_eps=1e-5)
        notes.append('CLIP with GELU, as timm builds vit_*_clip_224 (also for the .openai '
                     'weights); OpenAI trained with QuickGELU: --model clip-quickgelu, as '
                     'timm\'s vit_*_clip_quickgelu_224')
    elif num_reg or 'layer_scale' in options:
        family = 'dinov2'
    elif options['dist_token']:
        family = 'deit-distilled'
    elif options.get('fc_norm'):
        family = 'mae'
    else:
        family = 'vit'
    return family, dict(arch=arch, patch_size=patch, img_size=img_size, **options), notes


def _vitdet_layout(state: StateDict, depth: int) -> dict:
    """ViTDet's (or SAM's) relative-position tables, and the attention layout their lengths
    show: the shorter tables are a window's (``2 * window - 1`` rows), the longer ones the
    global blocks' grid."""
    lengths = [state[f'blocks.{i}.attn.rel_pos_h'].shape[0] for i in range(depth)
               if f'blocks.{i}.attn.rel_pos_h' in state]
    if not lengths:
        return {}
    if len(set(lengths)) == 1:
        return dict(rel_pos=True)  # one kind of block: global attention, or windows everywhere
    window = (min(lengths) + 1) // 2
    return dict(rel_pos=True, window_size=window,
                global_blocks=tuple(i for i, n in enumerate(lengths) if n != min(lengths)))


def family_options(family: str) -> dict:
    """What ``--model FAMILY`` forces on top of what the checkpoint shows."""
    forced = {'clip': dict(pre_norm=True, mlp_act='gelu', norm_eps=1e-5),
              'clip-quickgelu': dict(pre_norm=True, mlp_act='quick_gelu', norm_eps=1e-5),
              'eva02': dict(mlp_act='swiglu', rope_ref_grid=EVA02_ROPE_REF_GRID),
              'mae': dict(fc_norm=True)}
    return forced.get(family, {})


_SWIN_BLOCK = re.compile(r'layers\.(\d+)\.blocks\.(\d+)\.')


def is_swin(state: StateDict) -> bool:
    return 'layers.0.blocks.0.attn.relative_position_bias_table' in state


def infer_swin_config(state: StateDict) -> Tuple[str, dict, List[str]]:
    """``('swin', DyTSwin keyword arguments, notes)`` of a Swin state dict in timm's layout
    (:func:`~.weight_names.to_vit_names`, heads dropped): widths, depths, heads and the
    window are read off the tensors; the pre-training size is not in a checkpoint (see the
    notes)."""
    missing = [k for k in ('patch_embed.proj.weight', 'layers.0.blocks.0.mlp.fc2.weight')
               if k not in state]
    if missing:
        raise UnsupportedCheckpoint(f'not a Swin checkpoint of timm\'s layout: no '
                                    f'{", ".join(missing)}')
    embed_dims, _, patch, _ = state['patch_embed.proj.weight'].shape
    depths: Dict[int, int] = {}
    for key in state:
        m = _SWIN_BLOCK.match(key)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    heads = [state[f'layers.{i}.blocks.0.attn.relative_position_bias_table'].shape[1]
             for i in sorted(depths)]
    table = state['layers.0.blocks.0.attn.relative_position_bias_table'].shape[0]
    window = (_square_side(table) + 1) // 2
    fc1 = state['layers.0.blocks.0.mlp.fc1.weight']
    arch = dict(embed_dims=embed_dims, depths=tuple(depths[i] for i in sorted(depths)),
                num_heads=tuple(heads))
    # timm's Swins (swin_*_window7_224, *_window12_384) end in one window of the last stage
    img_size = patch * window * 2**(len(depths) - 1)
    options = dict(arch=arch, patch_size=patch, window_size=window,
                   mlp_ratio=fc1.shape[0] / embed_dims, img_size=img_size)
    notes = [f'pre-training size {img_size} px assumed: a Swin checkpoint does not hold it; '
             f'timm\'s window-{window} Swins end in one window of {window} x {window} tokens']
    return 'swin', options, notes
