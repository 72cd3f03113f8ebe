"""Which pre-trained ViT a checkpoint holds, read off its tensors.

Supported: the plain ViT (Google IN-21K, AugReg, DeiT, MAE pre-training),
DeiT distilled, MAE fine-tuned (global pooling + fc-norm), CLIP (pre-norm),
DINOv2 (LayerScale, optional registers) and EVA-02 (SwiGLU, 2-D RoPE). Each
maps onto options of the one :class:`~.vit.DyTViT`; :func:`infer_vit_config`
returns them. timm's EVA naming is renamed to the ViT's by
:func:`eva_to_timm_vit` (same function, fused qkv).

Swin Transformers (timm's, or Microsoft's original layout) map onto
:class:`~.swin.DyTSwin`: :func:`is_swin`, :func:`to_timm_swin`,
:func:`infer_swin_config`.
"""
import inspect
import re
from typing import Dict, List, Tuple

import torch

from .vit import DyTViT

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


def eva_to_timm_vit(state: StateDict) -> StateDict:
    """timm ``Eva`` names -> timm ``VisionTransformer`` names, computing the same.

    Separate or biased q/k/v become one ``qkv`` layer whose key bias is zero;
    ``gamma_1/2`` become ``ls1/2.gamma``; a packed SwiGLU ``fc1`` (gate first,
    as timm's GluMlp) is split into ``fc1_g`` and ``fc1_x``.
    """
    out = {}
    for name, tensor in state.items():
        m = re.match(r'(blocks\.\d+\.)(.*)', name)
        if not m:
            out[name] = tensor
            continue
        block, rest = m.groups()
        if rest in ('gamma_1', 'gamma_2'):
            out[f'{block}ls{rest[-1]}.gamma'] = tensor
        elif rest.startswith('attn.') and rest.split('.')[1] in (
                'q_proj', 'k_proj', 'v_proj', 'q_bias', 'v_bias', 'qkv'):
            continue  # assembled below
        elif rest in ('mlp.fc1.weight', 'mlp.fc1.bias') and f'{block}mlp.norm.weight' not in state \
                and _is_packed_swiglu(state, block):
            gate, value = tensor.chunk(2, dim=0)
            kind = rest.split('.')[-1]
            out[f'{block}mlp.fc1_g.{kind}'], out[f'{block}mlp.fc1_x.{kind}'] = gate, value
        else:
            out[name] = tensor
    for block in sorted({m.group(1) for k in state for m in [re.match(r'(blocks\.\d+\.)', k)] if m}):
        out.update(_fused_qkv(state, block))
    return out


def _is_packed_swiglu(state: StateDict, block: str) -> bool:
    """A GluMlp: fc1 yields twice the hidden width that fc2 reads."""
    fc1, fc2 = state.get(f'{block}mlp.fc1.weight'), state.get(f'{block}mlp.fc2.weight')
    return fc1 is not None and fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]


def _fused_qkv(state: StateDict, block: str) -> StateDict:
    attn = f'{block}attn.'
    if attn + 'qkv.weight' in state:
        weight = state[attn + 'qkv.weight']
        q_bias, v_bias = state.get(attn + 'q_bias'), state.get(attn + 'v_bias')
        bias = state.get(attn + 'qkv.bias')
    elif attn + 'q_proj.weight' in state:
        weight = torch.cat([state[attn + f'{n}_proj.weight'] for n in 'qkv'])
        q_bias, v_bias = state.get(attn + 'q_proj.bias'), state.get(attn + 'v_proj.bias')
        bias = None
    else:
        return {}
    if bias is None and q_bias is not None:
        bias = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])  # EVA has no key bias
    fused = {attn + 'qkv.weight': weight}
    if bias is not None:
        fused[attn + 'qkv.bias'] = bias
    return fused


def _square_side(n: int) -> int:
    side = int(round(n**0.5))
    return side if side * side == n and n > 0 else 0


def infer_vit_config(state: StateDict) -> Tuple[str, dict, List[str]]:
    """``(family, DyTViT keyword arguments, notes)`` of a state dict in timm ViT
    naming (after :func:`eva_to_timm_vit`, head weights dropped).

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
    else:
        raise UnsupportedCheckpoint(f'position embeddings of {num_pos} entries with {num_prefix} '
                                    'prefix tokens do not form a square grid')
    img_size = side * patch

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
    # only what differs from a DyTViT's defaults: what a config must set
    defaults = inspect.signature(DyTViT).parameters
    options = {k: v for k, v in options.items() if v != defaults[k].default}
    return family, dict(arch=arch, patch_size=patch, img_size=img_size, **options), notes


def family_options(family: str) -> dict:
    """What ``--model FAMILY`` forces on top of what the checkpoint shows."""
    forced = {'clip': dict(pre_norm=True, mlp_act='gelu', norm_eps=1e-5),
              'clip-quickgelu': dict(pre_norm=True, mlp_act='quick_gelu', norm_eps=1e-5),
              'eva02': dict(mlp_act='swiglu', rope_ref_grid=EVA02_ROPE_REF_GRID),
              'mae': dict(fc_norm=True)}
    return forced.get(family, {})


_SWIN_BLOCK = re.compile(r'layers\.(\d+)\.blocks\.(\d+)\.')
# buffers that Microsoft's Swin checkpoints hold and a DyTSwin computes
_SWIN_BUFFERS = ('relative_position_index', 'attn_mask')


def is_swin(state: StateDict) -> bool:
    return 'layers.0.blocks.0.attn.relative_position_bias_table' in state


def to_timm_swin(state: StateDict) -> StateDict:
    """A Swin state dict in timm's layout: Microsoft's original checkpoints merge patches
    at the *end* of stage i (timm: at the start of stage i + 1) and hold buffers."""
    original = 'layers.0.downsample.reduction.weight' in state
    out = {}
    for name, tensor in state.items():
        if name.rsplit('.', 1)[-1] in _SWIN_BUFFERS:
            continue
        if original:
            name = re.sub(r'^layers\.(\d+)\.downsample',
                          lambda m: f'layers.{int(m.group(1)) + 1}.downsample', name)
        out[name] = tensor
    return out


def infer_swin_config(state: StateDict) -> Tuple[str, dict, List[str]]:
    """``('swin', DyTSwin keyword arguments, notes)`` of a Swin state dict in timm's layout
    (:func:`to_timm_swin`, heads dropped): widths, depths, heads and the window are read
    off the tensors; the pre-training size is not in a checkpoint (see the notes)."""
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
