"""Detection (mmdet): the torchvision-backed mmcv kernels, window attention, the DyT Mask R-CNN,
the COCO-format demo data and its checks."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from helpers import REPO, run_tool
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

import dyt_mm
import dyt_mm.det  # noqa: F401
from dyt_mm.demo.det_shapes import CLASSES, write_det_shapes
from dyt_mm.deploy import TensorForward
from dyt_mm.models.dyt import DyTViT, ViTFlops
from dyt_mm.models.dyt.layers import Attention
from dyt_mm.models.dyt.pretrained import load_pretrained
from dyt_mm.models.dyt.windows import WindowGather

DEMO_BASE = osp.join(REPO, 'configs/det/demo/_shapes_base.py')
TARGET_CONFIG = osp.join(REPO, 'configs/det/demo/dyt-r0.5_mask-rcnn_vit-tiny-p8_shapes-target.py')
TINY = dict(arch=dict(embed_dims=64, depth=2, num_heads=2), patch_size=8)


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Build in mmdet's registries whatever scope other test modules left current."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def random_boxes(n, size=60.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n, generator=g)


# ------------------------------------------------- mmcv kernels served by torchvision
def test_nms_and_batched_nms_equal_torchvision():
    from mmcv.ops import batched_nms, nms
    boxes, scores = random_boxes(300)
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    expected = torchvision.ops.nms(boxes, scores, 0.5)
    assert torch.equal(keep, expected)
    assert torch.equal(dets, torch.cat([boxes[expected], scores[expected, None]], dim=1))
    labels = torch.randint(0, 5, (300, ), generator=torch.Generator().manual_seed(1))
    _, keep = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.5))
    assert torch.equal(keep, torchvision.ops.batched_nms(boxes, scores, labels, 0.5))
    # offset=1: mmcv's legacy widths (x2 - x1 + 1), i.e. boxes one pixel larger
    _, keep = nms(boxes, scores, iou_threshold=0.5, offset=1)
    grown = torch.cat([boxes[:, :2], boxes[:, 2:] + 1], dim=1)
    assert torch.equal(keep, torchvision.ops.nms(grown, scores, 0.5))


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_and_its_gradient_equal_torchvision(aligned):
    from mmcv.ops import RoIAlign, roi_align
    feats = torch.randn(2, 4, 16, 20, dtype=torch.float64)
    boxes, _ = random_boxes(6, size=60.0)
    rois = torch.cat([torch.tensor([0., 1, 0, 1, 1, 0])[:, None], boxes], dim=1).double()
    ours_in, theirs_in = feats.clone().requires_grad_(), feats.clone().requires_grad_()
    ours = roi_align(ours_in, rois, (7, 7), 0.25, 2, 'avg', aligned)
    theirs = torchvision.ops.roi_align(theirs_in, rois, (7, 7), 0.25, 2, aligned)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    grad = torch.randn_like(ours)
    ours.backward(grad)
    theirs.backward(grad)
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=1e-12)
    module = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=aligned)
    torch.testing.assert_close(
        module(feats, rois), torchvision.ops.roi_align(feats, rois, (7, 7), 0.25, 0, aligned))


def test_other_compiled_kernels_still_fail_clearly():
    from mmcv.ops import DeformConv2d, roi_align
    with pytest.raises(ModuleNotFoundError, match="kernel 'deform_conv_forward' needs mmcv's "
                       'compiled ops'):
        DeformConv2d(3, 3, 3)(torch.zeros(1, 3, 8, 8), torch.zeros(1, 18, 6, 6))
    with pytest.raises(ModuleNotFoundError, match='pool_mode="max"'):
        roi_align(torch.zeros(1, 1, 4, 4), torch.tensor([[0., 0, 0, 2, 2]]), 2, 1.0, 0, 'max')


# ------------------------------------------------------------ window attention
def test_one_window_over_the_whole_grid_is_global_attention():
    torch.manual_seed(0)
    # a 6 x 5 grid in one 6 x 6 window: the padded keys must not count
    windowed = DyTViT(**TINY, img_size=(48, 40), class_token=False, window_size=6).eval()
    plain = DyTViT(**TINY, img_size=(48, 40), class_token=False).eval()
    plain.load_state_dict(windowed.state_dict())
    x = torch.randn(2, 3, 48, 40)
    with dyt_mm.dyt_mode(windowed, 'complete'), dyt_mm.dyt_mode(plain, 'complete'):
        torch.testing.assert_close(windowed(x).tokens, plain(x).tokens, atol=1e-5, rtol=0)


def test_window_attention_flops_match_the_traced_count():
    from mmengine.analysis import FlopAnalyzer
    vit = DyTViT(**TINY, img_size=(48, 40), class_token=False, window_size=4, global_blocks=[1],
                 fused_attn=False).eval()  # 6 x 5 grid -> 2 x 2 windows of 4 x 4, padded
    with dyt_mm.dyt_mode(vit, 'complete'):
        analyzer = FlopAnalyzer(vit, (torch.randn(1, 3, 48, 40), ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        assert ViTFlops(vit).complete() == analyzer.total()
    assert vit.blocks[0].attn.window_size == 4 and vit.blocks[1].attn.window_size == 0


def reference_window_attention(attn, x, grid, window):
    """ViTDet's windows spelled out: the projections padded to whole windows, cut into
    windows, each attending within itself with the padded keys masked, then put back."""
    B, N, C = x.shape
    H, W = grid
    heads, head_dim = attn.num_heads, C // attn.num_heads
    qkv = F.pad(attn.qkv(x).reshape(B, H, W, 3 * C), (0, 0, 0, -W % window, 0, -H % window))
    real = F.pad(x.new_ones(1, H, W, 1), (0, 0, 0, -W % window, 0, -H % window))
    rows, cols = qkv.shape[1] // window, qkv.shape[2] // window

    def windows(t):  # (b, rows * window, cols * window, c) -> (b * rows * cols, window^2, c)
        t = t.reshape(t.shape[0], rows, window, cols, window, t.shape[-1]).transpose(2, 3)
        return t.reshape(-1, window * window, t.shape[-1])

    q, k, v = windows(qkv).unflatten(-1, (3, heads, head_dim)).permute(2, 0, 3, 1, 4)
    key_mask = windows(real).squeeze(-1).repeat(B, 1)
    bias = ((1 - key_mask) * torch.finfo(x.dtype).min)[:, None, None, :]
    if attn.fused_attn:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    else:
        out = ((q * head_dim**-0.5) @ k.transpose(-2, -1) + bias).softmax(dim=-1) @ v
    out = out.transpose(1, 2).reshape(B, rows, cols, window, window, C).transpose(2, 3)
    out = out.reshape(B, rows * window, cols * window, C)[:, :H, :W]
    return attn.proj(attn.norm(out.reshape(B, N, C)))


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('grid, window', [((4, 6), 2), ((6, 5), 4), ((5, 7), 3), ((3, 3), 4)])
def test_window_attention_equals_padding_partitioning_and_masking(grid, window, fused):
    """Padded grids included (6 x 5 in windows of 4: a 2 x 2 partition of 8 x 8)."""
    torch.manual_seed(0)
    attn = Attention(32, 4, fused_attn=fused, window_size=window).eval()
    x = torch.randn(2, grid[0] * grid[1], 32)
    with torch.no_grad():
        expected = reference_window_attention(attn, x, grid, window)
        assert torch.equal(attn.forward_windows(x, grid), expected)


def test_window_attention_refuses_tokens_that_are_not_its_grid():
    with pytest.raises(ValueError, match=r'image tokens only.*got 5 tokens for grid \(2, 2\)'):
        Attention(32, 4, window_size=2).forward_windows(torch.randn(1, 5, 32), (2, 2))
    with pytest.raises(ValueError, match='needs window_size > 0'):
        Attention(32, 4).forward_windows(torch.randn(1, 4, 32), (2, 2))

def test_window_layouts_are_kept_for_the_last_grids_but_not_from_tracing():
    gather = WindowGather((4, 4))
    x = torch.zeros(1)
    first = gather.layout((5, 5), x)
    assert gather.layout((5, 5), x) is first
    for size in range(6, 6 + WindowGather.MAX_LAYOUTS):
        gather.layout((size, size), x)
    assert gather.layout((5, 5), x) is not first  # the oldest made way
    # exported before any eager call: a layout of fake tensors must not stay behind
    vit = DyTViT(**TINY, img_size=(48, 40), class_token=False, window_size=4).eval()
    x = torch.randn(1, 3, 48, 40)
    with dyt_mm.dyt_mode(vit, 'complete'):
        program = torch.export.export(TensorForward(vit), (x, ))
        torch.testing.assert_close(program.module()(x), TensorForward(vit)(x))

def test_window_attention_refuses_prefix_tokens_and_token_mixing_dispatch():
    with pytest.raises(ValueError, match='without prefix tokens .*got 1 prefix'):
        DyTViT(**TINY, img_size=32, window_size=2)
    with pytest.raises(ValueError, match="needs the 'mlp' dispatch variant, got 'attn'"):
        DyTViT(**TINY, img_size=32, class_token=False, window_size=2, variant='attn')


@pytest.mark.parametrize('option', [dict(variant='attn'), dict(class_token=True),
                                    dict(final_norm=True)])
def test_backbone_refuses_the_options_its_layout_fixes(option):
    from mmdet.registry import MODELS
    name = next(iter(option))
    with pytest.raises(TypeError, match=r"DyTDetViT sets variant='mlp', class_token=False, "
                       rf'final_norm=False itself .*; remove {name} from the config'):
        MODELS.build(dict(type='DyTDetViT', img_size=32, window_size=2, **TINY, **option))


# ------------------------------------------------------------ relative positions (ViTDet)
def sam_encoder(**overrides):
    """timm's SAM / ViTDet-style ViT (decomposed relative positions), tiny, with random tables:
    8 x 8 tokens, windows of 4 in blocks 0 and 2, block 1 global."""
    from functools import partial

    from timm.models.vision_transformer_sam import VisionTransformerSAM
    options = dict(img_size=64, patch_size=8, embed_dim=64, depth=3, num_heads=2, window_size=4,
                   global_attn_indexes=(1, ), use_rel_pos=True, neck_chans=32, num_classes=0,
                   norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    torch.manual_seed(0)
    sam = VisionTransformerSAM(**dict(options, **overrides)).eval()
    for name, param in sam.named_parameters():
        if 'rel_pos' in name:
            torch.nn.init.normal_(param, std=0.3)
    return sam


def sam_blocks(sam, images):
    """timm's SAM encoder up to its neck: ``(B, H*W, C)`` tokens of the last block."""
    with torch.no_grad():
        tokens = sam.blocks((sam.patch_embed(images) + sam.pos_embed).contiguous())
    return tokens.flatten(1, 2)


VITDET_TINY = dict(arch=dict(embed_dims=64, depth=3, num_heads=2), patch_size=8, img_size=64,
                   class_token=False, final_norm=False, window_size=4, global_blocks=(1, ),
                   rel_pos=True)


@pytest.mark.parametrize('fused', [True, False])
def test_rel_pos_attention_equals_timms_sam_attention(fused):
    """The global path and the windowed path, with non-zero tables."""
    from timm.models.vision_transformer_sam import Attention as SamAttention
    from timm.models.vision_transformer_sam import window_partition, window_unpartition
    torch.manual_seed(0)
    # global attention on its grid and on a smaller one (tables resized), windows
    for window, size, grid in ((0, (3, 5), (3, 5)), (0, (8, 8), (6, 5)), (4, (4, 4), (8, 8))):
        ref = SamAttention(32, 4, use_rel_pos=True, input_size=size).eval()
        ref.fused_attn = fused
        torch.nn.init.normal_(ref.rel_pos_h, std=0.3)
        torch.nn.init.normal_(ref.rel_pos_w, std=0.3)
        ours = Attention(32, 4, fused_attn=fused, window_size=window, rel_pos=size).eval()
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(2, *grid, 32)
        with torch.no_grad():
            if window:
                parts, pad = window_partition(x, window)
                expected = window_unpartition(ref(parts), window, grid, pad)
                out = ours.forward_windows(x.flatten(1, 2), grid)
            else:
                expected, out = ref(x), ours(x.flatten(1, 2), grid=grid)
        torch.testing.assert_close(out, expected.flatten(1, 2), atol=1e-5, rtol=0)


def test_vitdet_with_rel_pos_equals_timms_sam_encoder_on_its_weights():
    """timm's SAM weights (4-D position embeddings, neck) load into the ViTDet layout."""
    sam = sam_encoder()
    vit = DyTViT(**VITDET_TINY, adapter=None, dispatch=None).eval()
    load_pretrained(vit, sam.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(vit(images).tokens, sam_blocks(sam, images), atol=1e-5, rtol=0)


def test_rel_pos_tables_are_resized_on_load_and_train_with_the_adapters():
    from dyt_mm.models.dyt.layers import resize_rel_pos
    sam = sam_encoder()  # windows of 4: tables of 7 rows; the global block's of 15
    vit = DyTViT(**dict(VITDET_TINY, window_size=2))
    load_pretrained(vit, sam.state_dict())
    for i, rows in ((0, 3), (1, 15), (2, 3)):
        table = vit.blocks[i].attn.rel_pos_h
        assert table.shape == (rows, 32) and table.requires_grad
        torch.testing.assert_close(table.data, resize_rel_pos(sam.blocks[i].attn.rel_pos_h,
                                                              rows))
    # an ImageNet ViT has no tables: they start at zero, and the ViT computes what it did
    plain = DyTViT(**dict(VITDET_TINY, rel_pos=False), adapter=None, dispatch=None).eval()
    with_tables = DyTViT(**VITDET_TINY, adapter=None, dispatch=None).eval()
    load_pretrained(with_tables, plain.state_dict())
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(with_tables(images).tokens, plain(images).tokens)
    with pytest.raises(ValueError, match=r"relative position tables \('blocks.0.attn.rel_pos_h'"
                       r'.*build it with rel_pos=True'):
        load_pretrained(plain, sam.state_dict())


def test_vitdet_names_and_layout_are_read_off_the_checkpoint():
    """detectron2's ``backbone.net.`` names, the class token's position embedding without
    the token, and the window / global blocks from the tables' lengths."""
    from dyt_mm.models.dyt.families import infer_vit_config
    from dyt_mm.models.dyt.weight_names import to_vit_names
    sam = sam_encoder()
    state = {'backbone.net.' + k: v for k, v in sam.state_dict().items()
             if not k.startswith(('pos_embed', 'neck.'))}
    state['backbone.net.pos_embed'] = torch.randn(1, 1 + 64, 64)
    state['backbone.simfp_2.0.weight'] = torch.zeros(1)
    state = to_vit_names(state)
    assert not any(k.startswith(('simfp', 'neck')) for k in state)
    family, options, _ = infer_vit_config(state)
    assert family == 'vit' and options['img_size'] == 64 and not options['class_token']
    assert options['rel_pos'] and options['window_size'] == 4
    assert options['global_blocks'] == (1, )
    options['arch']['num_heads'] = 2  # not one of timm's widths: the caller says
    vit = DyTViT(**dict(options, final_norm=False))
    load_pretrained(vit, state)
    torch.testing.assert_close(vit.pos_embed.data, state['pos_embed'][:, 1:])


def test_pretrain_grid_position_embeddings_are_resized_in_every_forward():
    """ViTDet keeps the 14 x 14 pre-training table and resizes it to the input grid in every
    forward: a frozen ViT computes what the one resized on load does, but full tuning trains
    the small table (ViTDet's parameter count)."""
    source = DyTViT(**dict(VITDET_TINY, img_size=32, rel_pos=False), adapter=None, dispatch=None)
    torch.nn.init.normal_(source.pos_embed, std=0.5)
    on_load = DyTViT(**VITDET_TINY, adapter=None, dispatch=None).eval()
    per_forward = DyTViT(**VITDET_TINY, pretrain_img_size=32, adapter=None, dispatch=None,
                         freeze_base=False).eval()
    for vit in (on_load, per_forward):
        load_pretrained(vit, source.state_dict())
    assert per_forward.pos_embed.shape == (1, 4 * 4, 64) and per_forward.pos_embed.requires_grad
    assert on_load.pos_embed.shape == (1, 8 * 8, 64)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(per_forward(images).tokens, on_load(images).tokens,
                                   atol=0, rtol=0)
    with pytest.raises(ValueError, match=r'pretrain_img_size \(30, 30\) is not divisible by '
                       r'the patch size 8'):
        DyTViT(**VITDET_TINY, pretrain_img_size=30)


def test_rel_pos_sparse_equals_masked_and_flops_match_the_traced_count():
    from mmengine.analysis import FlopAnalyzer
    torch.manual_seed(0)
    # 6 x 5 grid in windows of 4 (padded), global block 1
    vit = DyTViT(**dict(VITDET_TINY, img_size=(48, 40), fused_attn=False)).eval()
    for name, param in vit.named_parameters():
        if vit.is_dyt_param(name):
            torch.nn.init.normal_(param, std=0.3)
    x = torch.randn(3, 3, 48, 40)
    with torch.no_grad(), dyt_mm.dyt_mode(vit, 'masked'):
        masked = vit(x)
    with torch.no_grad(), dyt_mm.dyt_mode(vit, 'sparse'):
        sparse = vit(x)
    assert 0 < masked.masks.mean() < 1
    torch.testing.assert_close(sparse.tokens, masked.tokens, atol=1e-5, rtol=0)
    with dyt_mm.dyt_mode(vit, 'complete'):
        analyzer = FlopAnalyzer(vit, (x[:1], ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        einsums = analyzer.by_operator()['einsum']
        counter = ViTFlops(vit)
        assert counter.complete() - counter.rel_pos == analyzer.total() - einsums
    # the counters take einsum costs from numpy's einsum_path report, printed to 4 digits
    assert einsums == pytest.approx(counter.rel_pos, rel=1e-3)
    plain = DyTViT(**dict(VITDET_TINY, img_size=(48, 40), rel_pos=False))
    # q . R_h and q . R_w: 4 padded windows of 16 queries x 2 x 4 keys, and 30 x (6 + 5)
    assert ViTFlops(vit).dense() - ViTFlops(plain).dense() == 64 * (2 * 4 * 16 * 8 + 30 * 11)
    # ViTDet's own code would also project the 2 padded 8 x 8 grids' 34 padding slots
    assert counter.padded_projections == 2 * 34 * 4 * 64 * 64


def test_rel_pos_refuses_what_has_no_grid():
    with pytest.raises(ValueError, match='without prefix tokens .*got 1 prefix'):
        DyTViT(**dict(VITDET_TINY, class_token=True, window_size=0))
    with pytest.raises(ValueError, match=r"relative positions \(rel_pos=\(8, 8\)\) need the 'mlp'"):
        DyTViT(**dict(VITDET_TINY, window_size=0, variant='attn'))
    with pytest.raises(ValueError, match='token merging .* relative positions'):
        DyTViT(**dict(VITDET_TINY, window_size=0), merge=dict(r=2))
    attn = Attention(32, 4, rel_pos=(2, 2))
    with pytest.raises(ValueError, match=r'need the image tokens only.*got 5 tokens'):
        attn(torch.randn(1, 5, 32), grid=(2, 2))
    with pytest.raises(ValueError, match='packed kept rows of the sparse mode'):
        attn.forward_rows(torch.randn(2, 32), None)


# ------------------------------------------------------------ the detector
def tiny_detector():
    cfg = Config.fromfile(DEMO_BASE).model
    cfg.backbone.update(arch=TINY['arch'], adapter=dict(bottleneck=8, dropout=0.0))
    cfg.neck.in_channels = 64
    from mmdet.registry import MODELS
    model = MODELS.build(ConfigDict(cfg))
    torch.manual_seed(1)  # non-zero adapters, spread-out dispatcher logits
    for p in model.backbone.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.3)
    return model


def det_samples(batch):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    samples = []
    for i in range(batch):
        sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                             pad_shape=(128, 128), scale_factor=(1.0, 1.0),
                                             batch_input_shape=(128, 128)))
        boxes = torch.tensor([[10, 20, 50, 70], [60, 60, 100, 90]]) + i
        masks = np.zeros((2, 128, 128), np.uint8)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes.tolist()):
            mask[y0:y1, x0:x1] = 1
        sample.gt_instances = InstanceData(bboxes=boxes.float(), labels=torch.tensor([0, 2]),
                                           masks=BitmapMasks(masks, 128, 128))
        samples.append(sample)
    return samples


def test_sparse_detections_equal_masked_ones():
    model = tiny_detector().eval()
    model.test_cfg.rcnn.score_thr = 0.0
    x = torch.randn(2, 3, 128, 128)
    rates = []
    handle = model.backbone.vit.register_forward_hook(
        lambda m, i, o: rates.append((m.mode, float(o.masks.mean()))))
    with torch.no_grad():
        sparse = model.predict(x, det_samples(2))
        model.test_mode = 'masked'
        masked = model.predict(x, det_samples(2))
    handle.remove()
    assert [mode for mode, _ in rates] == ['sparse', 'masked']
    assert all(0.1 < rate < 0.9 for _, rate in rates), 'some tokens must be skipped'
    for s, m in zip(sparse, masked):
        assert len(s.pred_instances) > 0
        torch.testing.assert_close(s.pred_instances.bboxes, m.pred_instances.bboxes, atol=1e-4,
                                   rtol=0)
        torch.testing.assert_close(s.pred_instances.scores, m.pred_instances.scores, atol=1e-5,
                                   rtol=0)
        assert torch.equal(s.pred_instances.labels, m.pred_instances.labels)
        assert torch.equal(s.pred_instances.masks, m.pred_instances.masks)


def test_loss_has_every_dyt_term_and_distills_on_the_same_rois():
    model = tiny_detector().train()
    torch.manual_seed(0)
    losses = model.loss(torch.randn(2, 3, 128, 128), det_samples(2))
    for name in ('loss_rpn_cls', 'loss_cls', 'loss_mask', 'loss_complete', 'loss_distill',
                 'loss_rate'):
        assert name in losses and torch.isfinite(torch.as_tensor(sum(
            losses[name]) if isinstance(losses[name], list) else losses[name])), name
    assert losses['loss_distill'] > 0
    model.dyt_objective.complete_weight = model.dyt_objective.distill_weight = 0.0
    runs = []
    handle = model.backbone.vit.register_forward_hook(lambda m, i, o: runs.append(m.mode))
    losses = model.loss(torch.randn(2, 3, 128, 128), det_samples(2))
    handle.remove()
    assert runs == ['masked'] and 'loss_complete' not in losses and 'loss_distill' not in losses


# ------------------------------------------------------------ data
@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('det_shapes'))
    write_det_shapes(root, splits={'train': 8, 'val': 4})
    return root


def demo_dataset(root, ann_file='target/annotations/instances_train.json', prefix='target/train/'):
    from mmdet.registry import DATASETS
    cfg = Config.fromfile(DEMO_BASE)
    dataset = dict(cfg.train_dataloader.dataset, data_root=root, ann_file=ann_file,
                   data_prefix=dict(img=prefix))
    return DATASETS.build(dataset)


def test_demo_data_loads_through_mmdets_pipeline(shapes_root):
    dataset = demo_dataset(shapes_root)
    with open(osp.join(shapes_root, 'target/annotations/instances_train.json')) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    assert len(dataset) == 8 and dataset.metainfo['classes'] == CLASSES
    sample = dataset[0]
    inputs, data_sample = sample['inputs'], sample['data_samples']
    assert inputs.shape == (3, 128, 128) and inputs.dtype == torch.uint8
    annotations = [a for a in coco['annotations'] if a['image_id'] == 1]
    gt = data_sample.gt_instances
    assert len(gt) == len(annotations) > 0
    assert sorted(gt.labels.tolist()) == sorted(a['category_id'] - 1 for a in annotations)
    # polygons rasterised at the input size, one mask per instance, each inside its box
    # (both scaled and possibly flipped alike)
    assert gt.masks.masks.shape == (len(annotations), 128, 128)
    for box, mask in zip(gt.bboxes.tensor, gt.masks.masks):
        ys, xs = mask.nonzero()
        assert len(xs) > 50
        assert xs.min() >= box[0] - 1 and xs.max() <= box[2] and ys.min() >= box[1] - 1
        assert ys.max() <= box[3]


@pytest.mark.parametrize('change, message', [
    (lambda ann: ann.update(bbox=[100.0, 10.0, 60.0, 20.0]), r'has bbox \[x, y, w, h\] = '
     r'\[100.0, 10.0, 60.0, 20.0\], outside the \d+x\d+ image'),
    (lambda ann: ann.update(category_id=9), r'has category_id 9, which is not one of the '
     r'categories of the file: \[1, 2, 3, 4\]'),
], ids=['box-outside', 'unknown-category'])
def test_bad_annotations_name_the_file_and_entry(shapes_root, tmp_path, change, message):
    with open(osp.join(shapes_root, 'target/annotations/instances_train.json')) as f:
        coco = json.load(f)
    change(coco['annotations'][2])
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(coco))
    image = next(i['file_name'] for i in coco['images']
                 if i['id'] == coco['annotations'][2]['image_id'])
    with pytest.raises(ValueError, match=message) as error:
        demo_dataset(shapes_root, ann_file=str(bad))
    assert f"{bad}: annotation id 3 of image '{image}'" in str(error.value)


# ------------------------------------------------------------ Runner training
def test_training_iterations_through_train_py(shapes_root, tmp_path):
    cfg = Config.fromfile(TARGET_CONFIG)
    work_dir = str(tmp_path / 'work')
    cfg.merge_from_dict({
        'model.backbone.arch': TINY['arch'], 'model.backbone.init_cfg': None,
        'model.neck.in_channels': 64, 'train_dataloader.batch_size': 2,
        'train_cfg.max_iters': 2,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 2,
        'param_scheduler': dict(_delete_=True, type='ConstantLR', factor=1.0, by_epoch=False),
    })
    for loader in ('train_dataloader', 'test_dataloader'):  # the demo's stage 2 has no val
        cfg[loader].dataset.data_root = shapes_root
    cfg.test_evaluator.ann_file = osp.join(shapes_root, 'target/annotations/instances_val.json')
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path, '--work-dir', work_dir,
                    env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(next(p for p in _files(work_dir) if p.endswith('.log'))).read()
    for term in ('loss_rpn_cls', 'loss_mask', 'loss_complete', 'loss_distill', 'loss_rate',
                 'keep_rate', 'gflops'):
        assert term in log, term
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def _files(root):
    import os
    return [osp.join(d, f) for d, _, files in os.walk(root) for f in files]


# ------------------------------------------------------------ the COCO configs
def test_coco_configs_build_the_paper_backbones():
    """ViT-B, ViTDet's windows, d = 128; trainable backbone parameters per method."""
    from mmdet.registry import MODELS
    trainable = {}
    for method in ('dyt-r0.5', 'dyt-moe4-r0.5', 'adaptformer-d128', 'full'):
        cfg = Config.fromfile(osp.join(
            REPO, f'configs/det/{method}_mask-rcnn_vit-b16-in21k_simple-fpn_1x_coco.py'))
        assert cfg.model.type == 'DyTMaskRCNN' and cfg.train_dataloader.dataset.type == \
            'CheckedCocoDataset' and cfg.val_evaluator.type == 'CocoMetric'
        backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
        windows = [block.attn.window_size for block in backbone.vit.blocks]
        assert windows == [14, 14, 0] * 4 and backbone.vit.grid_size == (64, 64)
        tables = [block.attn.rel_pos_h.shape for block in backbone.vit.blocks]
        assert tables == [(27, 64), (27, 64), (127, 64)] * 4  # windows of 14, the 64 x 64 grid
        trainable[method] = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    adapters = 12 * (2 * 768 * 128 + 128 + 768)  # down + up projections and their biases
    dispatchers = 12 * (768 + 1)
    rel_pos = 8 * 2 * 27 * 64 + 4 * 2 * 127 * 64  # ViTDet's new relative-position tables
    assert trainable['adaptformer-d128'] == adapters + rel_pos
    assert trainable['dyt-r0.5'] == adapters + dispatchers + rel_pos
    assert trainable['dyt-moe4-r0.5'] == (4 * adapters + dispatchers + 12 * (768 * 4 + 4)
                                          + rel_pos)
    assert trainable['full'] == sum(p.numel() for p in backbone.parameters())
