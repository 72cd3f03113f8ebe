"""The mmseg layer: pyramid, DyT terms, sparse inference, label checks, Runner and tools."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from helpers import REPO, quick_budget_sweep, run_tool, save_random_base
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from PIL import Image

import dyt_mm
import dyt_mm.seg  # noqa: F401
from dyt_mm.demo.seg_shapes import CLASSES, write_seg_shapes
from dyt_mm.engine import DyTRunner
from dyt_mm.models.dyt import ViTFlops
from dyt_mm.utils.checkpoint import load_tensors

TARGET_CONFIG = osp.join(REPO, 'configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py')
SEG_CONFIGS = osp.join(REPO, 'configs/seg')
TINY_SEG_VIT = dict(arch=dict(embed_dims=64, depth=4, num_heads=2), patch_size=8)
NUM_CLASSES = len(CLASSES)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build in mmseg's registries whatever scope other test modules left current."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def build(cfg):
    from mmseg.registry import MODELS
    return MODELS.build(ConfigDict(cfg))


def tiny_segmentor(img_size=64, test_cfg=None, **dyt_loss):
    """A 4-block DyT UperNet, no dropout: every forward is a function of the seed."""
    norm_cfg = dict(type='BN', requires_grad=True)
    return build(dict(
        type='DyTEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
                               size=(img_size, img_size), seg_pad_val=255),
        backbone=dict(type='DyTSegViT', img_size=img_size, out_indices=(0, 1, 2, 3),
                      adapter=dict(bottleneck=8, dropout=0.0), **TINY_SEG_VIT),
        neck=dict(type='ViTFeaturePyramid', embed_dims=64),
        decode_head=dict(type='UPerHead', in_channels=[64] * 4, in_index=[0, 1, 2, 3],
                         pool_scales=(1, 2), channels=16, dropout_ratio=0.0,
                         num_classes=NUM_CLASSES, norm_cfg=norm_cfg),
        auxiliary_head=dict(type='FCNHead', in_channels=64, in_index=2, channels=8,
                            num_convs=1, concat_input=False, dropout_ratio=0.0,
                            num_classes=NUM_CLASSES, norm_cfg=norm_cfg,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        dyt_loss=dyt_loss,
        test_cfg=test_cfg or dict(mode='whole')))


def randomise_dyt(model, std=0.3):
    """Non-zero adapters and spread-out dispatcher logits (fresh ones are a zero branch)."""
    torch.manual_seed(1)
    for p in model.backbone.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=std)
    return model


def seg_samples(labels):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]


# ----------------------------------------------------------- backbone, pyramid
@pytest.mark.parametrize('size', [(64, 64), (48, 80), (32, 96), (64, 24)])
def test_pyramid_shapes_for_several_input_sizes(size):
    backbone = build(dict(type='DyTSegViT', img_size=64, out_indices=(0, 1, 2, 3),
                          **TINY_SEG_VIT))
    neck = build(dict(type='ViTFeaturePyramid', embed_dims=64, rescales=(4, 2, 1, 0.5)))
    maps = backbone(torch.randn(2, 3, *size))
    h, w = size[0] // 8, size[1] // 8
    assert [m.shape for m in maps] == [(2, 64, h, w)] * 4  # class token dropped
    levels = neck(maps)
    assert [tuple(m.shape[-2:]) for m in levels] == [
        (4 * h, 4 * w), (2 * h, 2 * w), (h, w), (h // 2, w // 2)]


def test_pyramid_levels_are_the_documented_operations():
    neck = build(dict(type='ViTFeaturePyramid', embed_dims=8, rescales=(4, 2, 1, 0.5, 0.25)))
    x4, x2, same, half, quarter = neck.levels
    assert [type(m).__name__ for m in x4] == [
        'ConvTranspose2d', 'Identity', 'GELU', 'ConvTranspose2d']
    assert isinstance(x2, torch.nn.ConvTranspose2d) and isinstance(same, torch.nn.Identity)
    assert (half.kernel_size, quarter.kernel_size) == (2, 4)
    maps = [torch.randn(1, 8, 8, 8) for _ in range(5)]
    out = neck(maps)
    assert torch.equal(out[2], maps[2])
    assert torch.equal(out[3], torch.nn.functional.max_pool2d(maps[3], 2))
    with_norm = build(dict(type='ViTFeaturePyramid', embed_dims=8, norm_cfg=dict(type='BN')))
    assert isinstance(with_norm.levels[0][1], torch.nn.BatchNorm2d)  # BEiT's variant


def test_backbone_and_pyramid_reject_bad_input():
    backbone = build(dict(type='DyTSegViT', img_size=64, out_indices=(0, 1, 2, 3),
                          **TINY_SEG_VIT))
    with pytest.raises(ValueError, match='input size 50x64 is not divisible by the patch size 8'):
        backbone(torch.randn(1, 3, 50, 64))
    with pytest.raises(ValueError, match=r'out_indices must be increasing .* \[-4, 4\).*\(1, 4\)'):
        build(dict(type='DyTSegViT', out_indices=(1, 4), **TINY_SEG_VIT))
    with pytest.raises(ValueError, match=r'out_indices must be increasing.*\(2, 1\)'):
        build(dict(type='DyTSegViT', out_indices=(2, 1), **TINY_SEG_VIT))
    with pytest.raises(TypeError, match=r'DyTSegViT sets class_token=True, final_norm=False '
                       'itself .*; remove class_token from the config'):
        build(dict(type='DyTSegViT', class_token=False, **TINY_SEG_VIT))
    neck = build(dict(type='ViTFeaturePyramid', embed_dims=64))
    with pytest.raises(ValueError, match='has 4 levels .* but got 3 feature maps'):
        neck(backbone(torch.randn(1, 3, 64, 64))[:3])
    with pytest.raises(ValueError, match=r'rescales must be .* got \(3,\)'):
        build(dict(type='ViTFeaturePyramid', embed_dims=64, rescales=(3, )))


def test_base_from_a_smaller_checkpoint_is_resized_and_its_final_norm_dropped(tmp_path):
    # the 224 -> 512 situation in small: a base saved at 32 px (with a final norm) for 64 px crops
    from dyt_mm.models.dyt.vit import resize_pos_embed
    path = save_random_base(str(tmp_path / 'base.pth'), img_size=32, **TINY_SEG_VIT)
    backbone = build(dict(type='DyTSegViT', img_size=64, out_indices=(0, 1, 2, 3),
                          init_cfg=dict(type='Pretrained', checkpoint=path), **TINY_SEG_VIT))
    backbone.init_weights()
    saved = torch.load(path, weights_only=True)['state_dict']
    assert 'norm.weight' in saved and isinstance(backbone.vit.norm, torch.nn.Identity)
    torch.testing.assert_close(backbone.vit.pos_embed.data,
                               resize_pos_embed(saved['pos_embed'], (4, 4), (8, 8), 1))
    assert torch.equal(backbone.vit.blocks[3].mlp.fc2.weight, saved['blocks.3.mlp.fc2.weight'])


# ----------------------------------------------------------------- losses
def test_loss_terms_match_their_definitions():
    model = randomise_dyt(tiny_segmentor(target_rate=0.3, rate_weight=2.0, complete_weight=0.5,
                                         distill_weight=0.7)).train()
    x = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, NUM_CLASSES, (2, 64, 64))
    labels[:, :4] = 255  # ignored pixels, as mmseg's padding is

    torch.manual_seed(7)
    losses = model.loss(x, seg_samples(labels))

    # The same computation spelled out: the dynamic pass draws the same Gumbel noise.
    torch.manual_seed(7)
    with dyt_mm.dyt_mode(model.backbone, 'masked'):
        feats, masks = model.backbone.forward_with_masks(x)
    dynamic = model.decode_head(model.neck(feats))
    with dyt_mm.dyt_mode(model.backbone, 'complete'):
        complete = model.decode_head(model.neck(model.backbone(x)))

    def upsample(logits):  # to the label size, as mmseg's decode heads do
        return torch.nn.functional.interpolate(logits, size=(64, 64), mode='bilinear',
                                               align_corners=False)

    def cross_entropy(logits):  # mmseg's default: averaged over all pixels, ignored ones too
        log_p = upsample(logits).log_softmax(1)
        valid = labels != 255
        picked = log_p.gather(1, labels.clamp(max=NUM_CLASSES - 1)[:, None])[:, 0]
        return -(picked * valid).sum() / labels.numel()

    p_t = upsample(complete).softmax(1)
    kl = (p_t * (p_t.log() - upsample(dynamic).log_softmax(1))).sum(1).mean()
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg',
                           'loss_complete', 'loss_distill', 'loss_rate'}
    torch.testing.assert_close(losses['decode.loss_ce'], cross_entropy(dynamic))
    torch.testing.assert_close(losses['loss_complete'], 0.5 * cross_entropy(complete))
    torch.testing.assert_close(losses['loss_distill'], 0.7 * kl)
    torch.testing.assert_close(losses['loss_rate'], 2.0 * (masks.mean() - 0.3)**2)
    assert 0 < masks.mean() < 1 and losses['loss_distill'] > 0


def passes_of(model, x, labels):
    modes = []
    handle = model.backbone.vit.register_forward_hook(lambda m, i, o: modes.append(m.mode))
    losses = model.loss(x, seg_samples(labels))
    handle.remove()
    return losses, modes


def test_zero_weights_remove_terms_and_the_complete_pass():
    x, labels = torch.randn(2, 3, 64, 64), torch.randint(0, NUM_CLASSES, (2, 64, 64))
    # the official segmentation recipe: CE + aux CE + rate loss, no teacher pass
    model = tiny_segmentor(complete_weight=0.0, distill_weight=0.0).train()
    losses, modes = passes_of(model, x, labels)
    assert {k for k in losses if 'loss' in k} == {'decode.loss_ce', 'aux.loss_ce', 'loss_rate'}
    assert modes == ['masked']
    model = tiny_segmentor(complete_weight=0.0, rate_weight=0.0).train()
    losses, modes = passes_of(model, x, labels)
    assert {k for k in losses if 'loss' in k} == {'decode.loss_ce', 'aux.loss_ce', 'loss_distill'}
    assert modes == ['masked', 'complete']


def test_every_trainable_parameter_learns_and_the_base_stays_frozen():
    model = randomise_dyt(tiny_segmentor()).train()
    x, labels = torch.randn(2, 3, 64, 64), torch.randint(0, NUM_CLASSES, (2, 64, 64))
    losses = model.loss(x, seg_samples(labels))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad
    frozen = [n for n, p in model.backbone.vit.named_parameters() if not p.requires_grad]
    assert 'blocks.0.mlp.fc1.weight' in frozen and 'pos_embed' in frozen
    assert all(not model.backbone.vit.is_dyt_param(n) for n in frozen)


# ------------------------------------------------------------- inference
@pytest.mark.parametrize('test_cfg', [
    dict(mode='whole'),
    dict(mode='slide', crop_size=(64, 64), stride=(40, 40)),
], ids=['whole', 'slide'])
def test_sparse_predictions_equal_masked_ones(test_cfg):
    model = randomise_dyt(tiny_segmentor(test_cfg=test_cfg)).eval()
    x = torch.randn(2, 3, 96, 112)
    modes = []
    handle = model.backbone.vit.register_forward_hook(
        lambda m, i, o: modes.append((m.mode, float(o.masks.mean()))))
    with torch.no_grad():
        sparse = model.predict(x)
        model.test_mode = 'masked'
        masked = model.predict(x)
    handle.remove()
    assert {mode for mode, _ in modes} == {'sparse', 'masked'}
    assert all(0 < rate < 1 for _, rate in modes), 'some tokens must be skipped'
    for s, m in zip(sparse, masked):
        torch.testing.assert_close(s.seg_logits.data, m.seg_logits.data, atol=1e-5, rtol=0)
        assert torch.equal(s.pred_sem_seg.data, m.pred_sem_seg.data)
        assert s.pred_sem_seg.shape == (96, 112)


@pytest.mark.parametrize('size', [(50, 70), (40, 100)])
@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_inputs_that_are_not_multiples_of_the_patch_are_padded(size, mode):
    test_cfg = dict(mode=mode, crop_size=(64, 64), stride=(48, 48))
    model = randomise_dyt(tiny_segmentor(test_cfg=test_cfg)).eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        logits = model.predict(x)[0].seg_logits.data
        # whole mode: the padded input's logits, cropped: padding never stretches the prediction
        padded = torch.nn.functional.pad(x, (0, -size[1] % 8, 0, -size[0] % 8))
        with dyt_mm.dyt_mode(model.backbone, 'sparse'):
            expected = model.decode_head.predict(
                model.extract_feat(padded), [dict(img_shape=padded.shape[2:])],
                model.test_cfg)[0, :, :size[0], :size[1]]
    assert logits.shape == (NUM_CLASSES, *size) and torch.isfinite(logits).all()
    if mode == 'whole':
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


# ----------------------------------------------------------- label checks
def write_pair(root, name, image_size, label):
    for folder in ('img', 'ann'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    Image.fromarray(np.zeros((*image_size, 3), np.uint8)).save(osp.join(root, 'img', name + '.jpg'))
    if label is not None:
        Image.fromarray(label.astype(np.uint8)).save(osp.join(root, 'ann', name + '.png'))


def first_sample(root, data_prefix=dict(img_path='img', seg_map_path='ann')):
    from mmseg.datasets import BaseSegDataset
    dataset = BaseSegDataset(
        data_root=str(root), data_prefix=data_prefix,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        metainfo=dict(classes=CLASSES),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadCheckedAnnotations', num_classes=NUM_CLASSES)])
    return dataset[0]


def test_good_label_maps_load_with_reduce_zero_label(tmp_path):
    label = np.array([[0, 1, 5], [255, 2, 3]])  # 0: not labelled; 255 stays ignored too
    write_pair(str(tmp_path), 'a', (2, 3), label)
    loaded = first_sample(tmp_path)['gt_seg_map']
    assert loaded.tolist() == [[255, 0, 4], [255, 1, 2]]


@pytest.mark.parametrize('case, error, message', [
    ('size', ValueError, r'label map .*a\.png is 4x6 but its image .*a\.jpg is 4x5'),
    ('missing', FileNotFoundError, r'label map not found: .*a\.png \(for image .*a\.jpg\)'),
    ('range', ValueError, r'label map .*a\.png holds class index\(es\) \[6\] after '
     r'reduce_zero_label; allowed are 0\.\.4 and the ignore index 255'),
])
def test_bad_label_maps_are_named(tmp_path, case, error, message):
    label = {'size': np.ones((4, 6)), 'missing': None, 'range': np.full((4, 5), 7)}[case]
    write_pair(str(tmp_path), 'a', (4, 5), label)
    with pytest.raises(error, match=message):
        first_sample(tmp_path)


def test_a_data_set_without_label_maps_is_named(tmp_path):
    write_pair(str(tmp_path), 'a', (4, 5), np.ones((4, 5)))
    with pytest.raises(KeyError, match=r'gives no label map for image .*a\.jpg.*seg_map_path'):
        first_sample(tmp_path, data_prefix=dict(img_path='img'))


def test_generated_shapes_follow_the_ade20k_layout(shapes_root):
    from mmseg.datasets import BaseSegDataset
    split = osp.join(shapes_root, 'target')
    images = sorted(os.listdir(osp.join(split, 'images', 'training')))
    labels = sorted(os.listdir(osp.join(split, 'annotations', 'training')))
    assert [osp.splitext(n)[0] for n in images] == [osp.splitext(n)[0] for n in labels]
    assert images[0].endswith('.jpg') and labels[0].endswith('.png')
    dataset = BaseSegDataset(
        data_root=split, data_prefix=dict(img_path='images/training',
                                          seg_map_path='annotations/training'),
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        metainfo=dict(classes=CLASSES),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadCheckedAnnotations', num_classes=NUM_CLASSES)])
    values = np.unique(np.concatenate([dataset[i]['gt_seg_map'].ravel()
                                       for i in range(len(dataset))]))
    assert set(values) == set(range(NUM_CLASSES)) | {255}  # every class, boundaries ignored


# ------------------------------------------------------ Runner and tools
@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    write_seg_shapes(root, splits={'training': 16, 'validation': 4})
    return root


@pytest.fixture(scope='module')
def seg_base(tmp_path_factory):
    """A 'pre-trained' tiny base (random weights) saved at 32 px, like a 224 checkpoint."""
    return save_random_base(str(tmp_path_factory.mktemp('seg_base') / 'base.pth'),
                            img_size=32, **TINY_SEG_VIT)


def tiny_seg_cfg(data_root, work_dir, base, max_iters=3):
    """The demo's stage-2 config, shrunk to a 64-channel ViT and a few iterations."""
    cfg = Config.fromfile(TARGET_CONFIG)
    cfg.merge_from_dict({
        'work_dir': work_dir,
        'model.backbone.arch': TINY_SEG_VIT['arch'],
        'model.backbone.init_cfg.checkpoint': base,
        'model.neck.embed_dims': 64,
        'model.decode_head.in_channels': [64] * 4,
        'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': 64,
        'model.auxiliary_head.channels': 8,
        'train_dataloader.batch_size': 4,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': max_iters,
        'param_scheduler': dict(_delete_=True, type='PolyLR', by_epoch=False, end=max_iters),
        'default_hooks.logger.interval': 1,
    })
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    return cfg


def test_hook_reports_keep_rates_and_backbone_gflops(shapes_root, seg_base, tmp_path):
    cfg = tiny_seg_cfg(shapes_root, str(tmp_path), seg_base, max_iters=2)
    cfg.log_level = 'WARNING'
    runner = DyTRunner.from_cfg(cfg)
    runner.train()
    vit = runner.model.backbone.vit
    masks = []
    handle = vit.register_forward_hook(lambda m, i, o: masks.append(o.masks))
    metrics = runner.test()
    handle.remove()
    hub = runner.message_hub.log_scalars
    for key in ('train/keep_rate', 'train/gflops', 'train/keep_rate_l3', 'val/mIoU',
                'val/keep_rate', 'val/gflops', 'val/flops_ratio', 'test/keep_rate_l0'):
        assert key in hub, key
    # sliding-window test: one backbone forward per 64 x 64 window, each counted
    masks = torch.cat(masks)
    assert len(masks) > len(runner.test_dataloader.dataset)
    flops = ViTFlops(vit)
    per_window = flops.from_masks(masks)
    assert hub['test/keep_rate'].current() == pytest.approx(masks.mean().item())
    assert hub['test/gflops'].current() == pytest.approx(per_window.mean().item() / 1e9)
    # backbone only: the ratio is to the dense ViT, not to the whole UperNet
    assert hub['test/flops_ratio'].current() == pytest.approx(per_window.mean().item() /
                                                              flops.dense())
    assert 0.0 <= metrics['mIoU'] <= 100.0


def test_tools_train_and_test_on_generated_files(shapes_root, seg_base, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg_path = str(tmp_path / 'cfg.py')
    tiny_seg_cfg(shapes_root, work_dir, seg_base).dump(cfg_path)
    env = dict(OMP_NUM_THREADS='1')
    proc = run_tool('tools/train.py', cfg_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_complete', 'loss_distill', 'loss_rate',
                'mIoU', 'keep_rate', 'gflops'):
        assert key in log, key
    ckpt = osp.join(work_dir, 'iter_3.pth')
    state = load_tensors(ckpt)['state_dict']
    assert not any('mlp.fc1' in k for k in state)  # adapter-only: the base comes from init_cfg
    # ... but the trained heads' BatchNorm statistics are kept: without them mIoU collapses
    assert 'decode_head.bottleneck.bn.running_var' in state

    out = str(tmp_path / 'preds.pkl')
    proc = run_tool('tools/test.py', cfg_path, ckpt, '--out', out, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Iter(test)' in log and 'mIoU' in log and 'keep_rate' in log and 'gflops' in log
    import pickle
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and preds[0]['pred_sem_seg']['data'].shape[1:] == \
        preds[0]['gt_sem_seg']['data'].shape[1:]


def test_budget_sweep_calibrates_and_scores_the_sliding_window_model(shapes_root, seg_base,
                                                                   tmp_path):
    # calibrated on the 16 training images' 64 x 64 windows, as the test slides them
    _, point, metric = quick_budget_sweep(tiny_seg_cfg(shapes_root, str(tmp_path), seg_base))
    assert metric == 'mIoU' and 0.0 <= point['metric'] <= 100.0


# ----------------------------------------------------------------- configs
@pytest.mark.parametrize('name, dataset, classes, iters', [
    ('dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512', 'ADE20KDataset', 150, 160000),
    ('dyt-moe4-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512', 'ADE20KDataset', 150,
     160000),
    ('dyt-r0.5_upernet_vit-b16-in21k_8xb2-80k_coco-stuff164k-512x512', 'COCOStuffDataset', 171,
     80000),
    ('dyt-moe4-r0.5_upernet_vit-b16-in21k_8xb2-80k_coco-stuff164k-512x512', 'COCOStuffDataset',
     171, 80000),
])
def test_paper_configs_say_what_their_names_say(name, dataset, classes, iters):
    cfg = Config.fromfile(osp.join(SEG_CONFIGS, name + '.py'))
    model, backbone = cfg.model, cfg.model.backbone
    assert cfg.default_scope == 'mmseg' and cfg.custom_imports.imports == ['dyt_mm.seg']
    assert cfg.train_dataloader.dataset.type == dataset
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loads = [t for t in cfg[loader].dataset.pipeline if 'Annotations' in t['type']]
        assert loads == [dict(type='LoadCheckedAnnotations', num_classes=classes)]
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == classes
    assert model.decode_head.channels == 768 and model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert backbone.img_size == (512, 512) and backbone.out_indices == (3, 5, 7, 11)
    assert backbone.adapter.bottleneck == 64
    assert backbone.adapter.type == ('MoEAdapter' if 'moe4' in name else 'Adapter')
    assert model.dyt_loss.target_rate == 0.5 and model.data_preprocessor.size == (512, 512)
    assert model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1e-3, 0.05)
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.train_cfg.max_iters == iters == cfg.param_scheduler[-1].end
    assert cfg.param_scheduler[0].end == 1500  # the official code's warm-up


def test_the_ade20k_model_is_the_paper_model():
    cfg = Config.fromfile(
        osp.join(SEG_CONFIGS, 'dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'))
    cfg.model.backbone.init_cfg = None
    model = build(cfg.model)
    vit = model.backbone.vit
    assert vit.pos_embed.shape == (1, 1 + 32 * 32, 768)
    trainable = sum(p.numel() for p in vit.parameters() if p.requires_grad)
    # 12 x (adapter 768*64 + 64 + 64*768 + 768, dispatcher 769): the paper's 1.19 M + TDs
    assert trainable == 12 * (768 * 64 + 64 + 64 * 768 + 768 + 769)
    # backbone FLOPs at 512 x 512, 1025 tokens: what DyTHook reports against
    assert ViTFlops(vit).dense() / 1e9 == pytest.approx(107.12, abs=0.01)
