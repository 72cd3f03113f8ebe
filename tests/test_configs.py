"""Every shipped classification config parses, and says what its name says."""
import glob
import os.path as osp
import re

import pytest
from helpers import REPO
from mmengine.config import Config

from dyt_mm.cls import VTAB1K_TASKS

# the DyT adapter configs; DyT + LoRA (dyt-lora-*) is checked with the comparison methods
VTAB = sorted(p for p in glob.glob(osp.join(REPO, 'configs/vtab1k/dyt-*.py'))
              if not osp.basename(p).startswith('dyt-lora-'))
IMAGE = sorted(p for p in glob.glob(osp.join(REPO, 'configs/image/dyt-*.py'))
               if not osp.basename(p).startswith('dyt-lora-'))


def test_all_vtab_tasks_at_three_rates():
    paper = [p for p in VTAB if '_vit-b16-in21k_' in p and '-tome' not in p]
    assert len(paper) == 19 * 3
    tasks = {Config.fromfile(p).train_dataloader.dataset.task for p in paper}
    assert tasks == set(VTAB1K_TASKS)


@pytest.mark.parametrize('path', VTAB, ids=osp.basename)
def test_vtab_config_matches_its_name(path):
    cfg = Config.fromfile(path)
    rate = float(re.search(r'dyt-r([0-9.]+)[-_]', osp.basename(path)).group(1))
    task = cfg.train_dataloader.dataset.task
    assert cfg.model.dyt_loss.target_rate == rate
    assert cfg.model.head.num_classes == VTAB1K_TASKS[task]
    assert cfg.test_dataloader.dataset.task == task and cfg.test_dataloader.dataset.split == 'test'
    assert cfg.model.backbone.adapter.bottleneck == 8  # d = 8 on VTAB-1K (paper)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 and cfg.train_cfg.max_epochs == 100
    assert cfg.train_dataloader.batch_size == 64 and cfg.default_scope == 'mmpretrain'


@pytest.mark.parametrize('path', IMAGE, ids=osp.basename)
def test_complete_dataset_config(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    backbone = cfg.model.backbone
    assert backbone.adapter.bottleneck == 64 and cfg.optim_wrapper.optimizer.weight_decay == 0.01
    assert backbone.adapter.type == ('MoEAdapter' if 'moe4' in name else 'Adapter')
    expected_variant = {'attn-': 'attn', 'attnmlp-': 'attn_mlp', 'layer-': 'layer'}
    variant = next((v for k, v in expected_variant.items() if f'dyt-{k}' in name), 'mlp')
    assert backbone.variant == variant
    assert cfg.param_scheduler[0].end == 20 and cfg.train_cfg.max_epochs == 100
    assert cfg.custom_imports.imports == ['dyt_mm.cls']


def test_a_vit_b_config_builds_the_paper_model():
    import dyt_mm.cls  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/vtab1k/dyt-r0.5_vit-b16-in21k_vtab1k-cifar100.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    trainable = sum(p.numel() for n, p in model.backbone.named_parameters() if p.requires_grad)
    # d = 8: 12 x (768*8 + 8 + 8*768 + 768 adapter + 769 dispatcher) = 0.166 M; the paper
    # prints 0.16 M (Table 3), the adapters alone are 0.157 M.
    assert trainable == 12 * (768 * 8 + 8 + 8 * 768 + 768 + 769) == 165996


# ------------------------------------------------------------------ the comparison methods
# method (file name prefix) -> trainable backbone parameters of ViT-B/16 by formula
VIT_B_PARAMS = 85_798_656  # patch embedding, class token, positions, 12 blocks, final norm
ADAPTER = {8: 12 * (2 * 768 * 8 + 8 + 768), 64: 12 * (2 * 768 * 64 + 64 + 768)}
TOKEN_GATES = 12 * 769
METHOD_PARAMS = {
    'full': VIT_B_PARAMS,
    'linear-probe': 0,
    'adaptformer-d8': ADAPTER[8],
    'adaptformer-d64': ADAPTER[64],
    'lora-r8': 12 * 2 * (2 * 768 * 8),  # q and v: 0.29 M (paper, VTAB-1K)
    'lora-r32': 12 * 2 * (2 * 768 * 32),  # q and v: 1.18 M (paper: 1.19 M)
    'vpt-deep-p8': 12 * 8 * 768,  # 0.07 M (paper, complete data sets)
    'vpt-deep': None,  # VTAB-1K: 12 x 768 x the task's prompt count (VPT_DEEP_PROMPTS)
    'dynamic-full-r0.5': VIT_B_PARAMS + TOKEN_GATES,
    'dynamic-full-paper-r0.5': VIT_B_PARAMS + TOKEN_GATES,
    'dyt-sample-r0.5': ADAPTER[64] + TOKEN_GATES,
    'dyt-random-r0.5': ADAPTER[64],
    'dyt-sample-random-r0.5': ADAPTER[64],
    'full-tome8': VIT_B_PARAMS,  # token merging adds no parameter
    'adaptformer-d8-tome8': ADAPTER[8],
    # beyond the paper (docs/dyt_lora.md): the dispatcher with LoRA, and with a d = 8 adapter
    'dyt-lora-r8-r0.5': 12 * 2 * (2 * 768 * 8) + TOKEN_GATES,
    'dyt-lora-r8-mlp-d8-r0.5': 12 * 2 * (2 * 768 * 8) + TOKEN_GATES + ADAPTER[8],
    'dyt-lora-r32-r0.5': 12 * 2 * (2 * 768 * 32) + TOKEN_GATES,
    'dyt-lora-r32-mlp-d8-r0.5': 12 * 2 * (2 * 768 * 32) + TOKEN_GATES + ADAPTER[8],
}
FAMILIES = {  # folder -> (file name after the method prefix, count of configs per method)
    'vtab1k': ('_vit-b16-in21k_vtab1k-', 19),
    'image': ('_vit-b16-in21k_', 6),
    'seg': ('_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512', 1),
    'video': ('_vit-b16-in21k_8xb16-', 2),
}
METHOD_CONFIGS = sorted(
    p for folder in FAMILIES for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py'))
    if osp.basename(p).split('_')[0] in METHOD_PARAMS)


def _method(path):
    return osp.basename(path).split('_')[0]


def _vtab_task(path):
    return osp.splitext(osp.basename(path))[0].split('_vtab1k-')[1]


# VPT-deep's prompt length per VTAB-1K task for ViT-B/16, as visinf/adapter_plus
# conf/experiment/vtab/vpt.yaml (commit 191c4ab) runs VPT; KMnP/vpt's demo.ipynb states dmlab,
# sun397 and eurosat alike (configs/_base_/vtab1k_vpt-deep_vit-b16.py says more)
VPT_DEEP_PROMPTS = {
    'cifar100': 10, 'caltech101': 10, 'dtd': 10, 'flowers102': 1, 'pets': 1, 'svhn': 50,
    'sun397': 5, 'camelyon': 100, 'eurosat': 100, 'resisc45': 10, 'retinopathy': 1,
    'clevr-count': 100, 'clevr-dist': 200, 'dmlab': 100, 'kitti-dist': 100, 'dsprites-loc': 100,
    'dsprites-ori': 100, 'smallnorb-azim': 200, 'smallnorb-elev': 200}


def test_vtab_vpt_configs_use_vpts_prompt_length_of_each_task():
    paths = [p for p in METHOD_CONFIGS if _method(p) == 'vpt-deep']
    # the leaf's own line (one of them is built with its base chain above)
    counts = {_vtab_task(p): int(re.search(r'num_prompts=(\d+)', open(p).read()).group(1))
              for p in paths}
    assert counts == VPT_DEEP_PROMPTS
    # the mean over the 19 tasks is 0.678 M parameters, not the paper's 0.53 M (Table 3)
    mean = sum(12 * 768 * n for n in counts.values()) / len(counts)
    assert round(mean / 1e6, 3) == 0.678


def test_every_method_has_its_configs_in_each_family():
    counts = {}
    for path in METHOD_CONFIGS:
        key = (osp.basename(osp.dirname(path)), _method(path))
        counts[key] = counts.get(key, 0) + 1
    vtab = ('full', 'linear-probe', 'adaptformer-d8', 'lora-r8', 'vpt-deep', 'dyt-lora-r8-r0.5',
            'dyt-lora-r8-mlp-d8-r0.5')
    others = ('full', 'linear-probe', 'adaptformer-d64', 'lora-r32', 'vpt-deep-p8',
              'dynamic-full-r0.5', 'dynamic-full-paper-r0.5', 'dyt-lora-r32-r0.5',
              'dyt-lora-r32-mlp-d8-r0.5')
    expected = {('vtab1k', m): 19 for m in vtab}
    for folder in ('image', 'seg', 'video'):
        expected.update({(folder, m): FAMILIES[folder][1] for m in others})
    expected.update({('image', m): 1 for m in
                     ('dyt-sample-r0.5', 'dyt-random-r0.5', 'dyt-sample-random-r0.5')})
    expected.update({('vtab1k', m): 1 for m in ('full-tome8', 'adaptformer-d8-tome8')})
    assert counts == expected


@pytest.mark.parametrize('path', METHOD_CONFIGS, ids=osp.basename)
def test_method_config_names_an_existing_base(path):
    # every leaf is _base_ + a few lines; the base chain is parsed and built below
    text = open(path).read()
    base = re.search(r"^_base_ = '([^']+)'", text, re.M).group(1)
    assert osp.isfile(osp.join(osp.dirname(path), base))
    assert len(text.splitlines()) <= 16


def _one_per_family_and_method():
    seen, picked = set(), []
    for path in METHOD_CONFIGS:
        key = (osp.basename(osp.dirname(path)), _method(path))
        if key not in seen:
            seen.add(key)
            picked.append(path)
    return picked


@pytest.mark.parametrize('path', _one_per_family_and_method(),
                         ids=lambda p: osp.basename(osp.dirname(p)) + '/' + osp.basename(p))
def test_method_config_builds_with_the_formula_trainable_parameters(path, monkeypatch):
    import torch
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(path)
    for module in cfg.custom_imports.imports:
        __import__(module)
    init_default_scope(cfg.default_scope)
    # only the parameter shapes matter: skip the slow random initialisation
    from dyt_mm import DyTViT
    monkeypatch.setattr(DyTViT, '_init_base_weights', lambda self: None)
    for layer in (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d):
        monkeypatch.setattr(layer, 'reset_parameters', lambda self: None)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    vit = model.backbone.vit
    folder = osp.basename(osp.dirname(path))
    trainable = sum(p.numel() for p in vit.parameters() if p.requires_grad)
    expected = METHOD_PARAMS[_method(path)]
    if _method(path) == 'vpt-deep':
        expected = 12 * 768 * VPT_DEEP_PROMPTS[_vtab_task(path)]
    if folder == 'seg' and expected >= VIT_B_PARAMS:
        # positions for the 32 x 32 grid of 512 px crops, no final norm
        expected += (32 * 32 - 14 * 14) * 768 - 2 * 768
    assert trainable == expected
    loss = cfg.model.dyt_loss
    if not vit.has_dispatch:
        assert loss.rate_weight == loss.complete_weight == loss.distill_weight == 0
    base_lr = {'vtab1k': 1e-3, 'image': 4e-3, 'seg': 1e-3, 'video': 5e-4}
    lr = cfg.optim_wrapper.optimizer.lr
    full = _method(path) in ('full', 'dynamic-full-r0.5', 'dynamic-full-paper-r0.5',
                             'full-tome8')
    assert lr == pytest.approx(base_lr[folder] / (10 if full else 1))


@pytest.mark.parametrize('path', sorted(glob.glob(
    osp.join(REPO, 'configs', '*', 'dynamic-full-paper-r0.5_*.py'))), ids=osp.basename)
def test_paper_literal_dynamic_full_adds_nothing_the_paper_does_not_state(path):
    ours = Config.fromfile(path.replace('dynamic-full-paper-r0.5_', 'dynamic-full-r0.5_'))
    literal = Config.fromfile(path)
    for cfg in (ours, literal):
        assert cfg.model.backbone.adapter is None and cfg.model.backbone.freeze_base is False
        assert cfg.model.dyt_loss.rate_weight == 2.0 and cfg.model.dyt_loss.target_rate == 0.5
    # ours: DyT's complete-model and distillation terms, the dispatchers at 10x the lr
    assert ours.model.dyt_loss.complete_weight == ours.model.dyt_loss.distill_weight == 1.0
    assert ours.optim_wrapper.paramwise_cfg.custom_keys['.dispatchers.'].lr_mult == 10.0
    # the paper's: L_cls + 2 L_rate, one lr for every parameter
    assert literal.model.dyt_loss.complete_weight == literal.model.dyt_loss.distill_weight == 0
    assert '.dispatchers.' not in literal.optim_wrapper.get('paramwise_cfg', {}).get(
        'custom_keys', {})
    assert literal.optim_wrapper.optimizer.lr == ours.optim_wrapper.optimizer.lr
    assert osp.basename(path) in open(ours.filename).read()  # each names the other
    assert osp.basename(ours.filename) in open(path).read()


# ------------------------------------------------------------------ other pre-trained bases
# config name part -> the timm model whose checkpoint the config expects
TIMM_MODEL_OF = {
    'dinov2-b14-reg4': 'vit_base_patch14_reg4_dinov2',
    'clip-b16-openai': 'vit_base_patch16_clip_quickgelu_224',
    'eva02-b16-clip': 'eva02_base_patch16_clip_224',
}


def assert_config_computes_timm_model(config, timm_name):
    """The backbone ``config`` builds loads timm's ``timm_name`` weights and computes its
    forward_features (random weights, 224 px, complete mode, 2 blocks)."""
    import timm
    import torch
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import dyt_mm.cls  # noqa: F401
    from dyt_mm import dyt_mode
    from dyt_mm.models.dyt.pretrained import load_pretrained
    from dyt_mm.models.dyt.vit import resolve_arch
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    # two of the blocks keep the test fast; every option of the config is still used
    cfg.model.backbone.arch = dict(resolve_arch(cfg.model.backbone.arch), depth=2)
    torch.manual_seed(0)
    vit = MODELS.build(cfg.model).backbone.vit.eval()
    reference = timm.create_model(timm_name, pretrained=False, img_size=224, depth=2).eval()
    load_pretrained(vit, reference.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(), dyt_mode(vit, 'complete'):
        # fresh adapters add exactly zero (their up-projections start at zero)
        torch.testing.assert_close(vit(x).tokens, reference.forward_features(x), atol=1e-4,
                                   rtol=0)


@pytest.mark.parametrize('base', sorted(TIMM_MODEL_OF))
def test_family_configs_build_the_model_their_timm_checkpoint_computes(base):
    """The VTAB-1K and the six complete data-set configs exist for each family, and its
    VTAB-1K config computes its timm model."""
    names = {osp.basename(p) for p in IMAGE}
    assert {f'dyt-r0.5_{base}_{d}.py' for d in ('cifar100', 'svhn', 'food101', 'fgvc-aircraft',
                                                 'stanford-cars', 'oxford-pets')} <= names
    config = osp.join(REPO, f'configs/vtab1k/dyt-r0.5_{base}_vtab1k-cifar100.py')
    assert Config.fromfile(config).model.backbone.init_cfg.checkpoint == \
        f'checkpoints/{base}_dyt.pth'
    assert_config_computes_timm_model(config, TIMM_MODEL_OF[base])


# ------------------------------------------------------------------ ViT-L (paper, Tables 18, 19)
def test_vit_l_configs_are_the_papers_and_compute_timm_vit_large():
    """CIFAR-100, SVHN, Food-101 at five rates with d = 64; the 19 VTAB-1K tasks at r = 0.5
    with d = 8; all on the converted ViT-L/16 IN-21K, which timm's vit_large_patch16_224
    computes."""
    rates = ('0.1', '0.3', '0.5', '0.7', '0.9')
    image = {osp.basename(p) for p in IMAGE if '_vit-l16-in21k_' in p}
    assert image == {f'dyt-r{r}_vit-l16-in21k_{d}.py' for r in rates
                     for d in ('cifar100', 'svhn', 'food101')}
    vtab = [p for p in VTAB if '_vit-l16-in21k_' in p]
    assert {Config.fromfile(p).train_dataloader.dataset.task for p in vtab} == set(VTAB1K_TASKS)
    assert all('dyt-r0.5_' in osp.basename(p) for p in vtab) and len(vtab) == 19
    for path in vtab[:1] + sorted(p for p in IMAGE if '_vit-l16-in21k_' in p)[:1]:
        backbone = Config.fromfile(path).model.backbone
        assert backbone.arch == 'large'
        assert backbone.init_cfg.checkpoint == 'checkpoints/vit-l16-in21k_dyt.pth'
    config = osp.join(REPO, 'configs/vtab1k/dyt-r0.5_vit-l16-in21k_vtab1k-cifar100.py')
    assert_config_computes_timm_model(config, 'vit_large_patch16_224')
