"""Read third-party ViT weights (timm .pth/.safetensors, Google/JAX .npz) safely.

Only tensors are ever read: ``.pth`` files go through the restricted unpickler of
:mod:`dyt_mm.utils.checkpoint`, ``.safetensors`` and ``.npz`` hold no code. The result uses this package's
backbone naming, which is timm's for the pre-trained part.
"""
import os
import re
from typing import Callable, Dict, List, Mapping, Tuple

import numpy as np
import torch

from ...utils.checkpoint import CheckpointError, load_tensors
from .families import eva_to_timm_vit, is_eva, is_swin, to_timm_swin
from .network import DyTNetwork
from .swin import DyTSwin
from .vit import DyTViT, resize_pos_embed

StateDict = Dict[str, torch.Tensor]
# Keys of a classification model that a backbone does not have. (``fc_norm``, the norm
# of the pooled tokens, is the backbone's when it was built with one.)
_HEAD_PREFIXES = ('head.', 'head_dist.', 'pre_logits.', 'head_drop.')
# Wrappers that training frameworks put around a backbone's names.
_NAME_PREFIXES = ('module.', 'backbone.vit.', 'backbone.', 'vit.', 'encoder.')


def read_weights(path: str) -> StateDict:
    """Tensors of a checkpoint file, never executing code from it.

    A file that is not a checkpoint of its kind raises ``CheckpointError``
    naming it (never a loader's advice to unpickle it unsafely).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if path.endswith(('.safetensors', '.npz')):
        try:
            if path.endswith('.safetensors'):
                from safetensors.torch import load_file
                return load_file(path)
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
        except Exception as err:  # SafetensorError; np.load's errors for a non-zip file
            # np.load's message advises loading "unsafely" (pickles): never repeat that
            reason = ('not a zip archive of arrays' if path.endswith('.npz')
                      else f'{type(err).__name__}: {str(err)[:200]}')
            raise CheckpointError(f'{path} is not a valid {os.path.splitext(path)[1]} weight '
                                  f'file ({reason})') from err
        return jax_to_timm(arrays)
    obj = load_tensors(path)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{path} holds a {type(obj).__name__}, not a state dict')
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def jax_to_timm(jax: StateDict) -> StateDict:
    """Google/JAX ViT naming and layouts (as in the original ViT .npz) -> timm."""
    out = {}

    def take(key):
        if key not in jax:
            raise ValueError(f'not a complete Google/JAX ViT checkpoint: {key!r} is missing')
        return jax[key].float()

    out['patch_embed.proj.weight'] = take('embedding/kernel').permute(3, 2, 0, 1)
    out['patch_embed.proj.bias'] = take('embedding/bias')
    if 'cls' in jax:
        out['cls_token'] = take('cls')
    out['pos_embed'] = take('Transformer/posembed_input/pos_embedding')
    out['norm.weight'] = take('Transformer/encoder_norm/scale')
    out['norm.bias'] = take('Transformer/encoder_norm/bias')
    blocks = sorted({int(m.group(1)) for k in jax
                     for m in [re.match(r'Transformer/encoderblock_(\d+)/', k)] if m})
    for i in blocks:
        src, dst = f'Transformer/encoderblock_{i}/', f'blocks.{i}.'
        attn = src + 'MultiHeadDotProductAttention_1/'
        for jax_norm, norm in (('LayerNorm_0', 'norm1'), ('LayerNorm_2', 'norm2')):
            out[dst + norm + '.weight'] = take(src + jax_norm + '/scale')
            out[dst + norm + '.bias'] = take(src + jax_norm + '/bias')
        # query/key/value kernels are (C, heads, head_dim): flatten, transpose, stack.
        out[dst + 'attn.qkv.weight'] = torch.cat(
            [take(attn + f'{n}/kernel').flatten(1).t() for n in ('query', 'key', 'value')])
        out[dst + 'attn.qkv.bias'] = torch.cat(
            [take(attn + f'{n}/bias').flatten() for n in ('query', 'key', 'value')])
        out[dst + 'attn.proj.weight'] = take(attn + 'out/kernel').flatten(0, 1).t()
        out[dst + 'attn.proj.bias'] = take(attn + 'out/bias')
        for j in (0, 1):
            dense = src + f'MlpBlock_3/Dense_{j}/'
            out[dst + f'mlp.fc{j + 1}.weight'] = take(dense + 'kernel').t()
            out[dst + f'mlp.fc{j + 1}.bias'] = take(dense + 'bias')
    return out


def to_backbone_names(state: StateDict) -> StateDict:
    """Strip framework prefixes and drop classification-head weights.

    In a whole-model checkpoint (keys under ``backbone.``) everything outside
    the backbone (data preprocessor, neck, heads) is dropped.
    """
    if any(name.startswith(('backbone.', 'module.backbone.')) for name in state):
        state = {k: v for k, v in state.items() if k.startswith(('backbone.', 'module.backbone.'))}
    out = {}
    for name, tensor in state.items():
        stripped = True
        while stripped:  # e.g. 'module.backbone.vit.' from a DDP-saved whole model
            stripped = next((p for p in _NAME_PREFIXES if name.startswith(p)), '')
            name = name[len(stripped):]
        if not name.startswith(_HEAD_PREFIXES):
            out[name] = tensor
    return out


def fit_pos_embed(model: DyTViT, state: StateDict) -> StateDict:
    """Resize ``pos_embed`` (square source grid) to the model's grid, bicubic."""
    pos = state.get('pos_embed')
    if pos is None or pos.shape == model.pos_embed.shape:
        return state
    num_grid = pos.shape[1] - model.num_pos_prefix
    side = int(round(num_grid**0.5))
    if side * side != num_grid:
        return state  # not a square grid: reported as a shape mismatch
    return dict(state, pos_embed=resize_pos_embed(pos, (side, side), model.grid_size,
                                                  model.num_pos_prefix))


def drop_class_token(model: DyTViT, state: StateDict) -> StateDict:
    """A ViT built without a class token (ViTDet) drops the checkpoint's, with its position
    embedding (the first one of a grid plus one)."""
    if 'cls_token' not in state or getattr(model, 'cls_token', None) is not None:
        return state
    state = {k: v for k, v in state.items() if k != 'cls_token'}
    pos = state.get('pos_embed')
    if pos is not None and int(round((pos.shape[1] - 1)**0.5))**2 == pos.shape[1] - 1:
        state['pos_embed'] = pos[:, 1:]
    return state


def compare_states(own: StateDict, state: StateDict,
                   may_miss: Callable[[str], bool] = lambda key: False
                   ) -> Tuple[List[str], List[str], List[str]]:
    """(missing keys, unexpected keys, mis-shaped keys) of ``state`` against ``own``.

    Keys of ``own`` for which ``may_miss`` is true are not reported missing.
    """
    missing = [k for k in own if k not in state and not may_miss(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in state if k in own and state[k].shape != own[k].shape]
    return missing, unexpected, mismatched


def compare_keys(model: DyTNetwork, state: StateDict) -> Tuple[List[str], List[str], List[str]]:
    """Like :func:`compare_states` for a network's base weights: DyT parameters may be missing."""
    return compare_states(model.state_dict(), state, model.is_dyt_param)


def describe_mismatch(missing, unexpected, mismatched) -> str:
    parts = []
    for title, keys in (('missing', missing), ('unexpected', unexpected),
                        ('mis-shaped', mismatched)):
        if keys:
            shown = ', '.join(keys[:12]) + (f' ... (+{len(keys) - 12})' if len(keys) > 12 else '')
            parts.append(f'{len(keys)} {title} key(s): {shown}')
    return '; '.join(parts)


def to_vit_names(state: StateDict) -> StateDict:
    """Any supported checkpoint's tensors (JAX, timm ViT or EVA, timm or Microsoft Swin,
    whole models) in the DyT network's naming, heads dropped; position embeddings still at
    their own grid."""
    if any(k.startswith('Transformer/') for k in state):
        state = jax_to_timm(state)
    state = to_backbone_names(state)
    if is_swin(state):
        return to_timm_swin(state)
    return eva_to_timm_vit(state) if is_eva(state) else state


def describe_arch(model: DyTNetwork) -> str:
    if isinstance(model, DyTSwin):
        return (f'DyT Swin (embed_dims={model.stage_dims[0]}, depths={model.depths}, '
                f'num_heads={model.num_heads}, patch={model.patch_size}, '
                f'window={model.window_size} at {model.img_size[0]}x{model.img_size[1]})')
    return (f'DyT ViT (arch embed_dims={model.embed_dims}, depth={model.depth}, '
            f'patch={model.patch_size})')


def convert_for(model: DyTNetwork, source) -> StateDict:
    """Read ``source`` (path or state dict), rename, fit position embeddings, check."""
    state = read_weights(source) if isinstance(source, str) else dict(source)
    state = fit_pos_embed(model, drop_class_token(model, to_vit_names(state)))
    # A ViT built without the final norm (dense features are raw block outputs) has no use
    # for the checkpoint's; one that pools without fc_norm none for the pooled tokens' norm.
    unused = tuple(name for name in ('norm.', 'fc_norm.')
                   if not isinstance(getattr(model, name[:-1], None), torch.nn.LayerNorm))
    state = {k: v for k, v in state.items() if not k.startswith(unused)}
    problems = describe_mismatch(*compare_keys(model, state))
    if problems:
        where = source if isinstance(source, str) else 'the given state dict'
        raise ValueError(f'pre-trained weights in {where} do not fit this '
                         f'{describe_arch(model)}: {problems}')
    return state


def load_into(model: DyTNetwork, source) -> None:
    state = convert_for(model, source)
    model.load_state_dict(state, strict=False)
