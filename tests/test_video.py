"""The mmaction layer: per-frame DyT backbone, temporal query head, recognizer, data checks,
configs, and Runner training + testing on generated mp4 clips through the tools."""
import logging
import os.path as osp
import pickle
import time

import numpy as np
import pytest
import torch
from helpers import REPO, quick_budget_sweep, run_tool
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import dyt_mm
import dyt_mm.video  # noqa: F401
from dyt_mm.demo.video_clips import CLASSES, make_clip, write_clip, write_video_clips
from dyt_mm.engine import DyTRunner
from dyt_mm.models.dyt import ViTFlops

VIDEO_CONFIGS = osp.join(REPO, 'configs/video')
DEMO_CONFIG = osp.join(VIDEO_CONFIGS, 'demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py')
K400_MOE = osp.join(VIDEO_CONFIGS,
                    'dyt-moe4-r0.5_vit-b16-in21k_8xb16-8x16x1-12e_kinetics400-rgb.py')
SSV2 = osp.join(VIDEO_CONFIGS, 'dyt-r0.5_vit-b16-in21k_8xb16-u8-50e_sthv2-rgb.py')
NUM_TRAIN, NUM_VAL = 16, 8


@pytest.fixture(autouse=True)
def mmaction_scope():
    """Build from mmaction's registries here without changing the scope other tests see."""
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


@pytest.fixture(scope='module')
def clips_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('moving_shapes'))
    write_video_clips(root, num_train=NUM_TRAIN, num_val=NUM_VAL)
    return root


def tiny_cfg(data_root: str, work_dir: str, max_iters: int = 2) -> Config:
    """The demo config with a 2-block ViT, iteration-based, a few iterations."""
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict({
        'work_dir': work_dir,
        'model.backbone.arch.depth': 2,
        'train_dataloader.batch_size': 8,
        'val_dataloader.batch_size': 4,
        'test_dataloader.batch_size': 4,
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                          val_interval=max_iters),
        'param_scheduler': dict(_delete_=True, type='CosineAnnealingLR', by_epoch=False,
                                T_max=max_iters),
        'default_hooks.checkpoint': dict(type='CheckpointHook', by_epoch=False,
                                         interval=max_iters),
        'default_hooks.logger.interval': 1,
        'log_processor.by_epoch': False,
        'log_level': 'WARNING',
    })
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    return cfg


def build_model(**dyt_loss):
    from mmaction.registry import MODELS
    cfg = Config.fromfile(DEMO_CONFIG).model
    cfg.backbone.arch.depth = 2
    cfg.backbone.adapter.dropout = 0.0
    cfg.dyt_loss = dyt_loss
    return MODELS.build(cfg)


def randomise_trainable(model, std=0.3):
    """Weights that make the dispatchers keep clearly different tokens per frame."""
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=std)


def samples(labels):
    from mmaction.structures import ActionDataSample
    return [ActionDataSample().set_gt_label(int(y)) for y in labels]


def clips(batch, frames=8, views=None, seed=0):
    """Random ``(B, C, T, 32, 32)`` clips, or ``(B, views, C, T, 32, 32)``."""
    torch.manual_seed(seed)
    shape = (batch, ) + ((views, ) if views else ()) + (3, frames, 32, 32)
    return torch.randn(shape)


# -------------------------------------------------------- backbone and head
@pytest.mark.parametrize('frames', [1, 8])
def test_shapes_through_backbone_and_head(frames):
    from mmaction.registry import MODELS
    backbone = MODELS.build(dict(type='DyTVideoViT', arch=dict(embed_dims=64, depth=2,
                                 num_heads=2), img_size=32, patch_size=8, num_frames=frames))
    head = MODELS.build(dict(type='TemporalQueryHead', num_classes=5, in_channels=64,
                             num_heads=4))
    tokens, masks = backbone.forward_with_masks(clips(3, frames))
    assert tokens.shape == (3, frames, 1 + 16, 64)  # every frame keeps its class token
    assert masks.shape == (3 * frames, 2, 16)  # one row of masks per frame
    assert head(tokens).shape == (3, 5)
    assert backbone.example_input(2).shape == (2, 3, frames, 32, 32)
    with pytest.raises(ValueError, match=rf'expected a clip batch of shape \(B, 3, '
                       rf'T={frames}, H, W\), got \(3, 3, {frames + 1}, 32, 32\)'):
        backbone(clips(3, frames + 1))
    with pytest.raises(ValueError, match=r'frame tokens of shape \(B, T, N, 64\), got'):
        head(tokens[0])


def test_every_frame_is_an_independent_image():
    model = build_model().eval()
    randomise_trainable(model)
    x = clips(2)
    vit = model.backbone.vit
    with torch.no_grad():
        tokens, masks = model.backbone.forward_with_masks(x)
        for b in range(2):
            for t in range(8):
                alone = vit(x[b, :, t].unsqueeze(0))
                torch.testing.assert_close(tokens[b, t], alone.tokens[0])
                assert torch.equal(masks[b * 8 + t], alone.masks[0])
        # changing one frame changes that frame's tokens and masks only
        edited = x.clone()
        edited[1, :, 5] = torch.randn(3, 32, 32)
        tokens2, masks2 = model.backbone.forward_with_masks(edited)
    changed = (tokens2 != tokens).flatten(2).any(-1)
    assert changed.nonzero().tolist() == [[1, 5]]
    assert not torch.equal(masks2[13], masks[13])
    assert torch.equal(torch.cat([masks2[:13], masks2[14:]]), torch.cat([masks[:13], masks[14:]]))
    assert 0.05 < masks.mean() < 0.95  # the dispatchers really do skip tokens


def test_sparse_equals_masked_scores():
    model = build_model().eval()
    randomise_trainable(model)
    x = clips(3, views=1)
    scores, masks = {}, {}

    def record(vit, inputs, out):
        masks[vit.mode] = out.masks

    handle = model.backbone.vit.register_forward_hook(record)
    with torch.no_grad():
        for mode in ('sparse', 'masked'):
            with dyt_mm.dyt_mode(model, mode):
                scores[mode] = model(x, mode='tensor', stage='head')
    handle.remove()
    assert torch.equal(masks['sparse'], masks['masked']) and 0.05 < masks['sparse'].mean() < 0.95
    torch.testing.assert_close(scores['sparse'], scores['masked'], atol=1e-5, rtol=0)


def test_head_reads_the_frames_as_a_set():
    """The paper's head has no temporal position: frame order cannot change the scores."""
    model = build_model().eval()
    randomise_trainable(model)
    with torch.no_grad():
        tokens = model.backbone(clips(2))
        scores = model.cls_head(tokens)
        reversed_scores = model.cls_head(tokens.flip(1))
        fewer_frames = model.cls_head(tokens[:, :4])
    torch.testing.assert_close(reversed_scores, scores)
    assert not torch.allclose(fewer_frames, scores)


def test_head_flops_match_the_tracer():
    from mmengine.analysis import FlopAnalyzer
    model = build_model().eval()
    tokens = torch.randn(1, 8, 17, 64)
    analyzer = FlopAnalyzer(model.cls_head, (tokens, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert model.cls_head.flops(8 * 17) == analyzer.total()


# ---------------------------------------------------------------- recognizer
def test_loss_terms_match_their_definitions():
    model = build_model(target_rate=0.3, rate_weight=2.0, complete_weight=0.5,
                        distill_weight=0.7).train()
    randomise_trainable(model)
    x, labels = clips(3, views=1), torch.tensor([0, 3, 2])

    torch.manual_seed(7)
    losses = model.loss(x, samples(labels))

    # The same computation spelled out: the dynamic pass draws the same Gumbel noise.
    torch.manual_seed(7)
    frames = x[:, 0].transpose(1, 2).reshape(24, 3, 32, 32)
    with dyt_mm.dyt_mode(model, 'masked'):
        out = model.backbone.vit(frames)
    dynamic = model.cls_head(out.tokens.reshape(3, 8, 17, 64))
    with dyt_mm.dyt_mode(model, 'complete'):
        complete = model.cls_head(model.backbone.vit(frames).tokens.reshape(3, 8, 17, 64))

    def cross_entropy(logits):
        return -logits.log_softmax(-1)[torch.arange(3), labels].mean()

    p_t = complete.softmax(-1)
    kl = (p_t * (p_t.log() - dynamic.log_softmax(-1))).sum() / 3
    assert set(losses) == {'loss_cls', 'top1_acc', 'loss_complete', 'loss_distill', 'loss_rate'}
    torch.testing.assert_close(losses['loss_cls'], cross_entropy(dynamic))
    torch.testing.assert_close(losses['loss_complete'], 0.5 * cross_entropy(complete))
    torch.testing.assert_close(losses['loss_distill'], 0.7 * kl)
    torch.testing.assert_close(losses['loss_rate'], 2.0 * (out.masks.mean() - 0.3)**2)
    accuracy = (dynamic.argmax(-1) == labels).double().mean()
    assert losses['top1_acc'].item() == pytest.approx(accuracy.item())
    assert 0.05 < out.masks.mean() < 0.95


def test_complete_pass_only_when_a_term_needs_it():
    passes = []
    for weights in (dict(complete_weight=0.0, distill_weight=0.0),
                    dict(complete_weight=0.0, distill_weight=1.0)):
        model = build_model(**weights).train()
        handle = model.backbone.vit.register_forward_hook(lambda m, i, o: passes.append(m.mode))
        losses = model.loss(clips(2, views=1), samples([0, 1]))
        handle.remove()
        passes.append(sorted(k for k in losses if k.startswith('loss')))
    assert passes == ['masked', ['loss_cls', 'loss_rate'],
                      'masked', 'complete', ['loss_cls', 'loss_distill', 'loss_rate']]


def test_multi_view_test_averages_the_views_logits():
    model = build_model().eval()
    randomise_trainable(model)
    x = clips(2, views=3)  # e.g. 1 spatial x 3 temporal views per clip
    modes = []
    handle = model.backbone.vit.register_forward_hook(lambda m, i, o: modes.append(m.mode))
    with torch.no_grad():
        predictions = model.predict(x, samples([0, 1]))
        per_view = torch.stack([model.cls_head(model.backbone(x[:, v])) for v in range(3)], 1)
    handle.remove()
    assert modes[0] == 'sparse' and model.backbone.vit.mode == 'masked'
    scores = torch.stack([p.pred_score for p in predictions])
    torch.testing.assert_close(scores, per_view.mean(dim=1), atol=1e-5, rtol=0)
    assert not torch.allclose(per_view[:, 0], per_view[:, 1])  # the views did differ
    assert [p.pred_label.item() for p in predictions] == scores.argmax(-1).tolist()


def test_recognizer_rejects_what_it_cannot_run():
    from mmaction.registry import MODELS
    cfg = Config.fromfile(DEMO_CONFIG).model
    with pytest.raises(ValueError, match="unknown test_mode 'fast'; allowed: masked"):
        MODELS.build(dict(cfg, test_mode='fast'))
    with pytest.raises(TypeError, match='needs a DyTVideoViT backbone, got ResNet'):
        MODELS.build(dict(cfg, backbone=dict(type='ResNet', depth=18)))
    with pytest.raises(ValueError, match='in_channels 64 is not divisible by num_heads 5'):
        MODELS.build(dict(cfg.cls_head, num_heads=5))


# ----------------------------------------------------------------- data
def checked_dataset(root, lines, pipeline=(), **kwargs):
    from mmaction.registry import DATASETS
    ann_file = osp.join(root, 'list.txt')
    with open(ann_file, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))
    kwargs.setdefault('num_classes', 4)
    return DATASETS.build(dict(type='CheckedVideoDataset', ann_file=ann_file,
                               data_prefix=dict(video=root), pipeline=list(pipeline), **kwargs))


DECORD = [dict(type='DecordInit'), dict(type='SampleFrames', clip_len=8, frame_interval=2),
          dict(type='CheckVideoLength'), dict(type='DecordDecode')]


def test_generated_clips_decode_with_decord_and_pyav(clips_root):
    from mmaction.registry import DATASETS
    with open(osp.join(clips_root, 'classes.txt')) as f:
        assert tuple(f.read().split()) == CLASSES
    decoded = {}
    for backend in ('Decord', 'PyAV'):
        pipeline = [dict(type=f'{backend}Init'),
                    dict(type='SampleFrames', clip_len=8, frame_interval=2, test_mode=True),
                    dict(type=f'{backend}Decode'), dict(type='FormatShape', input_format='NCTHW'),
                    dict(type='PackActionInputs')]
        dataset = DATASETS.build(dict(
            type='CheckedVideoDataset', num_classes=4, data_root=clips_root,
            ann_file='val_list_videos.txt', data_prefix=dict(video='videos/val'),
            pipeline=pipeline, test_mode=True))
        assert len(dataset) == NUM_VAL
        decoded[backend] = dataset[0]['inputs'].float()
        assert dataset[0]['inputs'].shape == (1, 3, 8, 32, 32)
    # both decoders read the same frames (mp4v), up to colour-conversion rounding
    assert (decoded['Decord'] - decoded['PyAV']).abs().mean() < 3


def test_list_errors_name_the_line_and_the_video(tmp_path):
    root = str(tmp_path)
    write_clip(osp.join(root, 'a.mp4'), make_clip(1, np.random.default_rng(0)))
    dataset = checked_dataset(root, ['a.mp4 1', '', 'a.mp4 3'])
    assert [dataset.get_data_info(i)['label'] for i in range(len(dataset))] == [1, 3]
    with pytest.raises(FileNotFoundError, match=r"video listed in .*list.txt:2 not found: "
                       r".*missing.mp4"):
        checked_dataset(root, ['a.mp4 1', 'missing.mp4 0'])
    with pytest.raises(ValueError, match=r'list.txt:1: label 4 of a.mp4 is outside the 4 classes '
                       r'\(allowed: 0..3\)'):
        checked_dataset(root, ['a.mp4 4'])
    with pytest.raises(ValueError, match=r'list.txt:1: label -1 of a.mp4 is outside'):
        checked_dataset(root, ['a.mp4 -1'])
    with pytest.raises(ValueError, match=r'list.txt:2: expected "video label", got \'a.mp4\''):
        checked_dataset(root, ['a.mp4 0', 'a.mp4'])
    with pytest.raises(ValueError, match=r'expected "video label", got \'a.mp4 x\''):
        checked_dataset(root, ['a.mp4 x'])
    with pytest.raises(FileNotFoundError, match='video list file not found: .*nowhere.txt'):
        from mmaction.registry import DATASETS
        DATASETS.build(dict(type='CheckedVideoDataset', ann_file=osp.join(root, 'nowhere.txt'),
                            num_classes=4, pipeline=[]))
    with pytest.raises(ValueError, match='num_classes must be an integer >= 1, got None'):
        checked_dataset(root, ['a.mp4 1'], num_classes=None)


def test_unreadable_and_short_videos_name_the_file(tmp_path):
    root = str(tmp_path)
    rng = np.random.default_rng(0)
    write_clip(osp.join(root, 'good.mp4'), make_clip(0, rng))
    write_clip(osp.join(root, 'short.mp4'), make_clip(0, rng, num_frames=6))
    with open(osp.join(root, 'broken.mp4'), 'wb') as f:
        f.write(b'\x00\x00\x00\x18ftypmp42' + bytes(200))  # an mp4 header, then nothing
    dataset = checked_dataset(root, ['good.mp4 0', 'broken.mp4 1', 'short.mp4 2'], DECORD)
    assert len(dataset[0]['imgs']) == 8
    with pytest.raises(ValueError, match=r'cannot load video .*broken.mp4: '):
        dataset[1]
    with pytest.raises(ValueError, match=r'short.mp4 has 6 frames, fewer than the 15 that its '
                       r'sampler needs \(clip_len=8, frame_interval=2\)'):
        dataset[2]

    # on_short='warn': a warning naming the video (once), then mmaction's looping
    pipeline = DECORD[:2] + [dict(type='CheckVideoLength', on_short='warn')] + DECORD[3:]
    dataset = checked_dataset(root, ['short.mp4 2'], pipeline, test_mode=True)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_instance(f'video-test-{time.time()}')
    logger.addHandler(handler)
    try:
        looped = [dataset[0] for _ in range(2)]
    finally:
        logger.removeHandler(handler)
    warnings = [r for r in records if 'short.mp4' in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]  # once, not per fetch
    assert 'short.mp4 has 6 frames, fewer than the 15' in warnings[0].getMessage()
    assert looped[0]['frame_inds'].tolist() == [0, 2, 4, 0, 2, 4, 0, 2]
    with pytest.raises(ValueError, match="unknown on_short 'skip'; allowed: error, warn"):
        from mmaction.registry import TRANSFORMS
        TRANSFORMS.build(dict(type='CheckVideoLength', on_short='skip'))


def test_generated_clips_are_reused_only_with_the_same_settings(tmp_path):
    root = str(tmp_path)
    assert write_video_clips(root, num_train=4, num_val=4) == dict(train=4, val=4)
    mtime = osp.getmtime(osp.join(root, 'videos', 'train', '00000.mp4'))
    write_video_clips(root, num_train=4, num_val=4)
    assert osp.getmtime(osp.join(root, 'videos', 'train', '00000.mp4')) == mtime
    with pytest.raises(ValueError, match='already holds clips written with'):
        write_video_clips(root, num_train=8, num_val=4)
    with open(osp.join(root, 'train_list_videos.txt')) as f:
        labels = sorted(int(line.split()[1]) for line in f)
    assert labels == [0, 1, 2, 3]  # balanced classes


def shape_centre(frame: np.ndarray) -> np.ndarray:
    """(row, column) of the shape on the 32 x 32 torus: the circular mean of its pixels."""
    colour = frame.reshape(-1, 3)[frame.sum(-1).argmax()]
    rows, cols = np.nonzero((frame == colour).all(-1))  # the shape has one flat colour
    angles = np.stack([rows, cols]) * 2 * np.pi / 32
    return np.angle(np.exp(1j * angles).mean(1)) % (2 * np.pi) * 32 / (2 * np.pi)


def test_one_frame_cannot_tell_the_classes_apart():
    """In every class the shape's position in a frame is uniform over the frame."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        centres = np.stack([shape_centre(make_clip(label, rng, num_frames=4)[3])
                            for _ in range(300)])
        for axis in range(2):  # 75 +- 7.5 per quarter of the frame if uniform
            counts = np.histogram(centres[:, axis], bins=4, range=(0, 32))[0]
            assert np.abs(counts - 75).max() < 30, (name, axis, counts)


# --------------------------------------------------------------- configs
def test_paper_configs_build_the_paper_model():
    from mmaction.registry import MODELS
    cfg = Config.fromfile(K400_MOE)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    adapters = [m for n, m in model.named_modules() if n.endswith('adapters.mlp')]
    assert len(adapters) == 12 and all(a.num_experts == 4 for a in adapters)
    vit = model.backbone.vit
    # 8 frames of the dense ViT-B/16 + the head (400 classes): Table 6 lists 142.53 G
    dense = 8 * ViTFlops(vit).dense() + model.cls_head.flops(8 * 197)
    assert dense / 1e9 == pytest.approx(142.53, abs=0.005)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 * 128 / 256
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.01
    assert cfg.model.dyt_loss.target_rate == 0.5 and cfg.model.backbone.adapter.bottleneck == 64
    assert cfg.train_cfg.max_epochs == 12 and Config.fromfile(SSV2).train_cfg.max_epochs == 50


@pytest.mark.parametrize('config, loader, views', [
    (K400_MOE, 'train_dataloader', 1), (K400_MOE, 'test_dataloader', 3),
    (SSV2, 'train_dataloader', 1), (SSV2, 'test_dataloader', 3)])
def test_paper_pipelines_run_on_a_real_clip(config, loader, views, clips_root):
    """Kinetics-400: 1 spatial x 3 temporal test views; SSv2: 3 spatial x 1 temporal."""
    cfg = Config.fromfile(config)
    pipeline = Compose(cfg[loader].dataset.pipeline)
    video = osp.join(clips_root, 'videos', 'val', '00000.mp4')
    # K400's views span 113 frames: the 24-frame clip is looped, with a warning kept quiet here
    MMLogger.get_instance(f'video-test-{time.time()}', log_level='ERROR')
    data = pipeline(dict(filename=video, label=0, start_index=0, modality='RGB'))
    assert data['inputs'].shape == (views, 3, 8, 224, 224)


# ------------------------------------------------------------- Runner + tools
def test_runner_reports_keep_rate_and_per_frame_gflops(clips_root, tmp_path):
    runner = DyTRunner.from_cfg(tiny_cfg(clips_root, str(tmp_path)))
    runner.train()
    masks = []
    vit = runner.model.backbone.vit
    handle = vit.register_forward_hook(lambda m, i, out: masks.append(out.masks))
    metrics = runner.test()
    handle.remove()
    hub = runner.message_hub.log_scalars
    for key in ('train/loss_cls', 'train/loss_complete', 'train/loss_distill', 'train/loss_rate',
                'train/top1_acc', 'train/keep_rate', 'train/gflops', 'val/acc/top1',
                'val/keep_rate', 'val/keep_rate_l1', 'test/gflops', 'test/flops_ratio'):
        assert key in hub, key
    masks = torch.cat(masks)
    assert masks.shape == (NUM_VAL * 3 * 8, 2, 16)  # 3 views x 8 frames per test clip
    per_frame = ViTFlops(vit).from_masks(masks).mean().item()
    assert hub['test/gflops'].current() == pytest.approx(per_frame / 1e9)
    assert hub['test/keep_rate'].current() == pytest.approx(masks.double().mean().item())
    assert 0.0 <= metrics['acc/top1'] <= 1.0


def test_tools_train_and_test_on_the_generated_clips(clips_root, tmp_path):
    cfg_path = str(tmp_path / 'tiny_video.py')
    tiny_cfg(clips_root, str(tmp_path / 'work'), max_iters=3).dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path, env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = str(tmp_path / 'work' / 'iter_3.pth')
    assert osp.isfile(checkpoint)

    out = str(tmp_path / 'predictions.pkl')
    proc = run_tool('tools/test.py', cfg_path, checkpoint, '--out', out,
                    '--cfg-options', 'log_level=INFO', env=dict(OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'acc/top1' in log and 'keep_rate' in log and 'gflops' in log
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == NUM_VAL  # one averaged prediction per clip, not per view
    assert all(p['pred_score'].shape == (len(CLASSES), ) for p in predictions)
    with open(osp.join(clips_root, 'val_list_videos.txt')) as f:
        labels = [int(line.split()[1]) for line in f]
    assert [int(p['gt_label']) for p in predictions] == labels


def test_budget_sweep_calibrates_and_scores_multi_view_clips(clips_root, tmp_path):
    # calibrated on every frame of the 16 training clips' test views
    _, point, metric = quick_budget_sweep(tiny_cfg(clips_root, str(tmp_path)))
    assert metric == 'acc/top1' and 0.0 <= point['metric'] <= 1.0
