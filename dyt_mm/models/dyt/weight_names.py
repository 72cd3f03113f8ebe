"""Third-party checkpoint names -> the DyT networks' names (timm's): dict in, dict out.

Google/JAX ViT arrays, timm's EVA, timm's or Microsoft's Swin and the wrappers of
training frameworks are renamed here, tensors only: no network is imported, so the
loader (:mod:`.pretrained`) and the converter stand above this module and the networks
beside it. What each network then does with the tensors (position embeddings resized
to its grid, a class token dropped) is its own ``checkpoint_filter``.
"""
import re
from typing import Dict

import torch

from .families import is_eva, is_swin

StateDict = Dict[str, torch.Tensor]
# Keys of a classification model that a backbone does not have. (``fc_norm``, the norm
# of the pooled tokens, is the backbone's when it was built with one.)
_HEAD_PREFIXES = ('head.', 'head_dist.', 'pre_logits.', 'head_drop.')
# Wrappers that training frameworks put around a backbone's names (detectron2's ViTDet keeps
# its ViT under ``backbone.net.``, beside the pyramid).
_NAME_PREFIXES = ('module.', 'backbone.net.', 'backbone.vit.', 'backbone.', 'image_encoder.',
                  'vit.', 'encoder.')
# The ViT of a whole model: detectron2's ViTDet, SAM's image encoder, a backbone.
_BACKBONE_PREFIXES = ('backbone.net.', 'image_encoder.', 'backbone.')
# buffers that Microsoft's Swin checkpoints hold and a DyTSwin computes
_SWIN_BUFFERS = ('relative_position_index', 'attn_mask')


def to_vit_names(state: StateDict) -> StateDict:
    """Any supported checkpoint's tensors (JAX, timm ViT or EVA, timm or Microsoft Swin,
    whole models) in the DyT network's naming, heads dropped; position embeddings still at
    their own grid."""
    if any(k.startswith('Transformer/') for k in state):
        state = jax_to_timm(state)
    sam = any(k.startswith('image_encoder.') for k in state)
    state = to_backbone_names(state)
    if sam or getattr(state.get('pos_embed'), 'ndim', 3) == 4:
        state = sam_to_timm_vit(state)
    if is_swin(state):
        return to_timm_swin(state)
    return eva_to_timm_vit(state) if is_eva(state) else state


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

    In a whole-model checkpoint (keys under ``backbone.``, detectron2's
    ``backbone.net.``, SAM's ``image_encoder.``) everything outside the ViT (data
    preprocessor, pyramid, neck, heads, SAM's prompt encoder and mask decoder) is dropped.
    """
    for prefix in _BACKBONE_PREFIXES:
        wrapped = (prefix, 'module.' + prefix)
        if any(name.startswith(wrapped) for name in state):
            state = {k: v for k, v in state.items() if k.startswith(wrapped)}
            break
    out = {}
    for name, tensor in state.items():
        stripped = True
        while stripped:  # e.g. 'module.backbone.vit.' from a DDP-saved whole model
            stripped = next((p for p in _NAME_PREFIXES if name.startswith(p)), '')
            name = name[len(stripped):]
        if not name.startswith(_HEAD_PREFIXES):
            out[name] = tensor
    return out


def sam_to_timm_vit(state: StateDict) -> StateDict:
    """SAM's image encoder (original or timm naming) -> timm ViT names: ``(1, H, W, C)``
    position embeddings flattened to ``(1, H*W, C)``, ``mlp.lin1/2`` -> ``mlp.fc1/2``, and
    its convolutional neck dropped (the detection pyramid replaces it)."""
    out = {}
    for name, tensor in state.items():
        if name.startswith('neck.'):
            continue
        if name == 'pos_embed' and tensor.ndim == 4:
            tensor = tensor.flatten(1, 2)
        out[re.sub(r'\.mlp\.lin(\d)\.', r'.mlp.fc\1.', name)] = tensor
    return out


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
    blocks = {m.group(1) for k in state for m in [re.match(r'(blocks\.\d+\.)', k)] if m}
    for block in sorted(blocks):
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
