"""The analysis tools: FLOPs against fvcore, FLOPs from the masks, speed, pictures, errors."""
import glob
import json
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from helpers import REPO, TINY_VIT, run_tool, save_random_base, tiny_digits_cfg
from PIL import Image

import dyt_mm
from dyt_mm.analysis import (benchmark_report, build_model, compare_modes, dyt_parts, load_config,
                             model_flops, peak_forward_memory, random_backbone_inputs,
                             run_on_inputs, visualize_dispatch)
from dyt_mm.analysis.compare import Candidate, compare_candidates
from dyt_mm.analysis.gemm_floor import LinearLayersAlone
from dyt_mm.analysis.reports import speedup_line, speedup_summary, unreliable_lines
from dyt_mm.analysis.speed import backbone_model_flops
from dyt_mm.analysis.timing import reliability, speedup, time_interleaved
from dyt_mm.analysis.toolbox import model_input, toolbox_of
from dyt_mm.analysis.visualize import highlight, token_map
from dyt_mm.engine import DyTRunner
from dyt_mm.models.dyt import TokenDispatcher, ViTFlops
from dyt_mm.models.dyt.calibration import calibrate_keep_rate


def demo_config(toolbox_folder):
    """The tiny DyT demo config of the segmentation or video layer."""
    found = glob.glob(osp.join(REPO, 'configs', toolbox_folder, 'demo', 'dyt-r*.py'))
    assert len(found) == 1, f'expected one DyT demo config in configs/{toolbox_folder}/demo'
    return found[0]


SEG_DEMO = demo_config('seg')
VIDEO_DEMO = demo_config('video')
TOOLBOXES = ('cls', 'seg', 'video')


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    return save_random_base(str(tmp_path_factory.mktemp('base') / 'base.pth'))


@pytest.fixture(scope='module')
def cls_cfg(digits_root, base_ckpt, tmp_path_factory):
    return tiny_digits_cfg(digits_root, str(tmp_path_factory.mktemp('cls')), base_ckpt)


def config_of(toolbox, cls_cfg):
    return {'cls': lambda: cls_cfg, 'seg': lambda: load_config(SEG_DEMO),
            'video': lambda: load_config(VIDEO_DEMO)}[toolbox]()


def model_with_busy_dispatchers(cfg, seed=0):
    """Random weights, dispatchers that keep clearly different tokens per input, and
    attention spelled out so that fvcore sees its matmuls."""
    model = build_model(cfg)
    _, vit = dyt_parts(model)
    torch.manual_seed(seed)
    for module in vit.modules():
        if isinstance(module, TokenDispatcher):
            torch.nn.init.normal_(module.gate.weight, std=0.5)
    for block in vit.blocks:
        block.attn.fused_attn = False
    return model


def fvcore_flops(model, inputs, dyt_mode, **kwargs):
    _, vit = dyt_parts(model)

    class Call(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, **kwargs)

    with dyt_mm.dyt_mode(vit, dyt_mode), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        analysis = FlopCountAnalysis(Call(), (inputs, ))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analysis.total()


def whole_model_flops(model, cfg, backbone_inputs, dyt_mode):
    """fvcore's count of the model's tensor-mode forward (heads included)."""
    toolbox = toolbox_of(cfg)
    return fvcore_flops(model, model_input(toolbox, backbone_inputs), dyt_mode, mode='tensor',
                        **toolbox.tensor_kwargs)


# ------------------------------------------------------------------- FLOPs
def test_dense_flops_equal_fvcore_on_a_timm_vit_of_the_same_shape(cls_cfg):
    import timm
    model = build_model(cls_cfg)
    arch = TINY_VIT['arch']
    timm_vit = timm.models.VisionTransformer(
        img_size=32, patch_size=TINY_VIT['patch_size'], embed_dim=arch['embed_dims'],
        depth=arch['depth'], num_heads=arch['num_heads'], num_classes=10, global_pool='token')
    for block in timm_vit.blocks:
        block.attn.fused_attn = False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        expected = FlopCountAnalysis(timm_vit.eval(), torch.randn(1, 3, 32, 32)).total()
    assert model_flops(model, cls_cfg).dense() == expected


@pytest.mark.parametrize('toolbox', TOOLBOXES)
def test_complete_flops_equal_fvcore_on_the_whole_model(toolbox, cls_cfg):
    cfg = config_of(toolbox, cls_cfg)
    model = model_with_busy_dispatchers(cfg)
    flops = model_flops(model, cfg)
    x = random_backbone_inputs(model, 1)
    assert flops.complete() == whole_model_flops(model, cfg, x, 'complete')
    assert flops.frames == (8 if toolbox == 'video' else 1)
    assert flops.outside > 0  # the heads are counted too


@pytest.mark.parametrize('toolbox', TOOLBOXES)
def test_per_input_flops_follow_the_masks(toolbox, cls_cfg):
    """What each input costs in sparse mode, from its masks, is what fvcore counts
    when that input alone runs sparse (a clip: all its frames)."""
    cfg = config_of(toolbox, cls_cfg)
    model = model_with_busy_dispatchers(cfg)
    x = random_backbone_inputs(model, 3, seed=1)
    call = run_on_inputs(model, x, 'sparse').calls[0]
    per_input = model_flops(model, cfg).per_input(call)
    assert len(set(per_input.tolist())) > 1, 'inputs with different masks cost differently'
    for i in range(3):
        assert per_input[i].item() == whole_model_flops(model, cfg, x[i:i + 1], 'sparse')


def test_flops_at_another_input_size_follow_the_token_count(cls_cfg):
    model = build_model(cls_cfg)
    _, vit = dyt_parts(model)
    flops = model_flops(model, cls_cfg, shape=(48, 48))
    assert flops.num_image_tokens == (48 // TINY_VIT['patch_size'])**2
    assert flops.dense() - flops.outside == ViTFlops(vit, grid=(6, 6)).dense()


def test_bad_shape_is_an_error_naming_the_allowed_sizes(cls_cfg):
    model = build_model(cls_cfg)
    with pytest.raises(ValueError, match=r'--shape 8 32 32 .* up to 2 positive sizes'):
        random_backbone_inputs(model, 1, (8, 32, 32))


# ------------------------------------------------------------------- speed
def test_calibration_makes_every_site_keep_the_rate(cls_cfg):
    model = model_with_busy_dispatchers(cls_cfg)
    backbone, _ = dyt_parts(model)
    x = random_backbone_inputs(model, 8)
    assert calibrate_keep_rate(backbone, x, 0.3) == pytest.approx(0.3, abs=0.01)
    masks = run_on_inputs(model, x, 'sparse').calls[0].masks
    tokens = masks.shape[0] * masks.shape[2]
    per_site = masks.mean(dim=(0, 2))
    assert torch.allclose(per_site, torch.full_like(per_site, 0.3), atol=1.5 / tokens)
    assert calibrate_keep_rate(backbone, x, 1.0) == 1.0
    with pytest.raises(ValueError, match='keep rate must lie in'):
        calibrate_keep_rate(backbone, x, 1.5)


def test_compare_modes_reports_speed_against_the_flops_ceiling(cls_cfg):
    model = model_with_busy_dispatchers(cls_cfg)
    backbone, vit = dyt_parts(model)
    x = random_backbone_inputs(model, 4)
    calibrate_keep_rate(backbone, x, 0.5)
    ticks = []
    result = compare_modes(backbone, x, num_iters=3, warmup=1, progress=lambda: ticks.append(1))
    assert len(ticks) == 6 and vit.mode == 'masked'  # both modes timed; mode restored

    masks = run_on_inputs(model, x, 'sparse').calls[0].masks
    vit_flops = ViTFlops(vit)
    ceiling = vit_flops.complete() / vit_flops.from_masks(masks).mean().item()
    assert result['ceiling'] == pytest.approx(ceiling, rel=1e-12)
    assert result['keep_rate'] == masks.mean().item() == 0.5
    assert result['speedup'] == pytest.approx(
        result['seconds_complete']['median'] / result['seconds_sparse']['median'])
    assert result['efficiency'] == pytest.approx(result['speedup'] / result['ceiling'])
    assert result['throughput_sparse'] == pytest.approx(4 / result['seconds_sparse']['median'])
    assert 0 < result['peak_memory_sparse_mb'] <= result['peak_memory_complete_mb']


def test_benchmark_in_bfloat16_runs_a_copy_and_leaves_the_model_as_it_was(cls_cfg):
    model = build_model(cls_cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = benchmark_report(model, cls_cfg, batch_size=4, num_iters=1, warmup=0,
                              calibrate_rate=0.5, shape=(32, 32), dtype=torch.bfloat16)
    assert report['dtype'] == 'bfloat16' and report['keep_rate'] == 0.5
    assert report['ceiling'] > 1 and report['throughput_sparse'] > 0
    after = model.state_dict()
    assert all(torch.equal(after[k], v) and after[k].dtype == v.dtype for k, v in before.items())


def test_linear_layers_alone_replay_every_linear_call_of_the_dense_model(cls_cfg):
    model = build_model(cls_cfg)
    backbone, vit = dyt_parts(model)
    x = random_backbone_inputs(model, 3)
    with dyt_mm.dyt_mode(vit, 'complete'):
        replay = LinearLayersAlone(backbone, x)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            linear_flops = FlopCountAnalysis(backbone, x).by_operator()['linear']
    tokens = 3 * (vit.patch_tokens(x)[0].shape[1] + vit.num_prefix)
    assert {rows for rows, _, _ in replay.shapes} == {tokens}
    # fvcore counts the same multiply-adds: every linear call was recorded, once
    assert sum(n * i * o for n, i, o in replay.shapes) == linear_flops
    replay()  # runs on its own inputs
    with pytest.raises(ValueError, match='ran no nn.Linear layer'):
        LinearLayersAlone(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8))


def test_sparse_peak_memory_stays_below_complete_when_a_layer_keeps_every_token(cls_cfg):
    model = model_with_busy_dispatchers(cls_cfg)
    backbone, vit = dyt_parts(model)
    x = random_backbone_inputs(model, 16)
    calibrate_keep_rate(backbone, x, 0.5)
    with torch.no_grad():
        vit.blocks[0].dispatchers['mlp'].gate.bias.fill_(1e4)  # early layers often keep all

    def peak(mode):
        def run():
            with dyt_mm.dyt_mode(vit, mode), torch.no_grad():
                backbone(x)
        return peak_forward_memory(run, torch.device('cpu'))['bytes']

    masks = run_on_inputs(model, x, 'sparse').calls[0].masks
    assert masks[:, 0].min() == 1
    # Up to the per-token bookkeeping (gate logits, masks, row indices: a few bytes per
    # token); a gathered copy of the tokens would be embed_dims * 4 bytes per token.
    bookkeeping = 16 * x.shape[0] * (masks.shape[-1] + vit.num_prefix)
    assert peak('sparse') <= peak('complete') + bookkeeping


# ------------------------------------------------------------- reliability
def test_a_speedup_far_above_its_ceiling_is_marked(cls_cfg):
    """Real timings of a run that does a 256th of the work (1 image of 32 px against 64 of
    64 px): judged against the ceiling of a like-for-like comparison (1x) the speedup is
    implausible, against the FLOPs ratio of what really ran it is not."""
    model = build_model(cls_cfg)
    backbone, vit = dyt_parts(model)
    big, small = torch.randn(64, 3, 64, 64), torch.randn(1, 3, 32, 32)

    def forward(x):
        @torch.no_grad()
        def run():
            with dyt_mm.dyt_mode(vit, 'complete'):
                backbone(x)
        return run

    timings = time_interleaved(dict(big=forward(big), small=forward(small)), big.device,
                               num_iters=3, warmup=1)
    measured = speedup(timings, 'big', 'small')
    flops_ratio = (len(big) * backbone_model_flops(backbone, big).complete() /
                   backbone_model_flops(backbone, small).complete())
    judged = reliability(timings, dict(speedup=(measured, 1.0)), max_load=1e6)
    assert judged['unreliable'] == [
        f'speedup {measured:.3f}x is far above its ceiling 1.000x (over 1.5x it): not what '
        'the runs can gain; too few warm-up rounds, or load that hit one run more than another']
    assert measured < flops_ratio
    assert reliability(timings, dict(speedup=(measured, flops_ratio)),
                       max_load=1e6)['unreliable'] == []


def test_a_measurement_on_a_loaded_machine_is_marked(cls_cfg):
    model = model_with_busy_dispatchers(cls_cfg)
    backbone, _ = dyt_parts(model)
    x = random_backbone_inputs(model, 4)
    # the timing itself puts load on the machine: above a limit of 0.001
    loaded = compare_modes(backbone, x, num_iters=3, warmup=1, measure_memory=False,
                           max_load=0.001)
    assert loaded['load_average'] > 0.001 and loaded['max_load'] == 0.001
    reason = (f"the machine was loaded: 1-minute load average {loaded['load_average']:.2f} "
              'above the limit 0.001')
    # (a tiny model's few timed calls may also land far above the ceiling: a second reason)
    assert loaded['unreliable'][0] == reason
    assert f'  [UNRELIABLE: {reason}' in speedup_summary(loaded)
    assert unreliable_lines(loaded)[0] == f'UNRELIABLE: {reason}'
    assert '[UNRELIABLE, see below]' in speedup_line(loaded)
    calm = compare_modes(backbone, x, num_iters=3, warmup=1, measure_memory=False, max_load=1e6)
    assert not any('loaded' in r for r in calm['unreliable'])
    assert ('UNRELIABLE' in speedup_summary(calm)) == bool(calm['unreliable'])
    with pytest.raises(ValueError, match='load limit must be a number >= 0, got -1'):
        compare_modes(backbone, x, num_iters=1, warmup=0, measure_memory=False, max_load=-1)


def test_methods_are_compared_in_one_interleaved_loop(cls_cfg, digits_root, base_ckpt,
                                                     tmp_path):
    full = tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt,
                           config=osp.join(REPO, 'configs/demo/full_vit-tiny-p4_digits-target.py'))
    candidates = [Candidate(name, cfg, build_model(cfg)) for name, cfg in
                  (('dyt', cls_cfg), ('full', full))]
    messages = []
    report = compare_candidates(candidates, batch_size=4, num_iters=2, warmup=0,
                                progress=messages.append, max_load=0.001)
    for stage in ('inference', 'train_step'):
        assert [m for m in messages if m.startswith(f'[{stage}] round')] == [
            f'[{stage}] round 1/2', f'[{stage}] round 2/2']
        assert any(r.startswith(f'{stage}: the machine was loaded') for r in report['unreliable'])
    dyt, dense = report['rows']
    assert dyt['speed_ratio'] == 1.0 and dense['keep_rate'] == 1.0 > dyt['keep_rate']
    assert dense['speed_ratio'] == pytest.approx(dense['inference_throughput'] /
                                                 dyt['inference_throughput'])
    assert dense['train_step_seconds'] > 0 and report['load_average'] > 0.001


def test_peak_memory_is_the_largest_live_allocation_of_a_run():
    def run():
        a = torch.ones(1000, 1000)  # 4 MB
        b = a + 1  # 8 MB live
        del a
        return b * 2  # 8 MB live again

    peak = peak_forward_memory(run, torch.device('cpu'))
    assert 8_000_000 <= peak['bytes'] < 8_100_000
    assert 'profiler' in peak['measure']


# ---------------------------------------------------------------- pictures
def test_token_map_and_highlight_mark_exactly_the_kept_patches():
    mask = np.zeros(6)
    mask[4] = 1  # row 1, column 1 of a 2 x 3 grid of 4-pixel patches
    pixel_map = token_map(mask, 8, 12, 4)
    assert pixel_map.sum() == 16 and pixel_map[4:8, 4:8].all()
    pixels = np.full((8, 12, 3), 200, np.uint8)
    shown = highlight(pixels, pixel_map)
    assert (shown[4:8, 4:8] != 200).any(axis=-1).all()  # tinted
    assert (shown[:4] < 50).all()  # skipped: darkened
    with pytest.raises(ValueError, match='6 tokens do not tile a 9x12 input'):
        token_map(mask, 9, 12, 2)


def test_segmentation_picture_shows_the_predicted_mask(tmp_path):
    cfg = load_config(SEG_DEMO)
    model = model_with_busy_dispatchers(cfg)
    image = str(tmp_path / 'scene.jpg')
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (80, 120, 3), np.uint8)).save(image)
    out = str(tmp_path / 'seg.png')
    result = visualize_dispatch(model, cfg, image, out)
    assert Image.open(out).size[0] > 0 and len(result['sites']) == 4
    assert 0 < result['keep_rate'] < 1


def test_video_picture_has_a_row_per_frame(tmp_path):
    cfg = load_config(VIDEO_DEMO)
    model = model_with_busy_dispatchers(cfg)
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 8, (32, 32))
    for t in range(24):  # a bar moving right
        frame = np.zeros((32, 32, 3), np.uint8)
        frame[8:16, t:t + 8] = 255
        writer.write(frame)
    writer.release()
    out = str(tmp_path / 'video.png')
    result = visualize_dispatch(model, cfg, video, out)
    assert result['frames'] == 8
    width, height = Image.open(out).size
    assert height > width  # 8 rows of (input + 4 sites)


# ------------------------------------------------------------------ tools
@pytest.fixture(scope='module')
def trained(digits_root, base_ckpt, tmp_path_factory):
    """A tiny DyT model trained for 2 iterations (adapter-only checkpoint) and its config."""
    work_dir = tmp_path_factory.mktemp('trained')
    cfg = tiny_digits_cfg(digits_root, str(work_dir), base_ckpt, max_iters=2, val_interval=2)
    DyTRunner.from_cfg(cfg).train()
    cfg_path = str(work_dir / 'tiny_digits.py')
    cfg.dump(cfg_path)
    return cfg_path, str(work_dir / 'iter_2.pth')


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_get_flops_on_test_data_and_on_random_inputs(trained):
    cfg_path, ckpt = trained
    proc = run_tool('tools/analysis/get_flops.py', cfg_path, '--checkpoint', ckpt,
                    '--num-samples', '6')
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report['num_inputs'] == 6 and 'test data' in report['inputs']
    assert report['gflops_min'] <= report['gflops_mean'] <= report['gflops_max']
    # a sample that keeps every token costs complete + the dispatchers; on average DyT skips
    assert report['gflops_mean'] < report['complete_gflops']
    assert report['ratio_to_dense'] == pytest.approx(report['gflops_mean'] /
                                                     report['dense_gflops'])
    assert report['keep_rate'] == pytest.approx(np.mean(report['keep_rate_per_site']), abs=1e-3)
    assert 'dense model' in proc.stdout and 'DyT per input: mean' in proc.stdout

    proc = run_tool('tools/analysis/get_flops.py', cfg_path, '--shape', '48', '48')
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report['input_shape'] == [3, 48, 48] and report['image_tokens'] == 36
    assert 'random inputs' in report['inputs'] and report['num_inputs'] == 32


def test_get_flops_counts_lora_merged_as_deployed(digits_root, base_ckpt, tmp_path):
    cfg = tiny_digits_cfg(digits_root, str(tmp_path), base_ckpt, config=osp.join(
        REPO, 'configs/demo/lora-r8_vit-tiny-p4_digits-target.py'))
    cfg_path = str(tmp_path / 'lora.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/analysis/get_flops.py', cfg_path, '--shape', '32', '32',
                    '--num-samples', '2')
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report['lora_merged'] == TINY_VIT['arch']['depth']
    assert report['gflops_mean'] == report['complete_gflops'] == report['dense_gflops']
    assert 'LoRA     merged into the frozen weights' in proc.stdout


def test_benchmark_runs_both_modes_and_reports(trained):
    cfg_path, ckpt = trained
    proc = run_tool('tools/analysis/benchmark.py', cfg_path, '--checkpoint', ckpt,
                    '--batch-size', '4', '--num-iters', '2', '--warmup', '1',
                    '--calibrate-rate', '0.5', '--threads', '1', '--max-load', '0.001')
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report['calibrated_keep_rate'] == report['keep_rate'] == 0.5
    # measured on a loaded machine (above the limit given): the output says so
    assert report['unreliable'][0].startswith('the machine was loaded')
    assert '[UNRELIABLE, see below]' in proc.stdout
    assert f"UNRELIABLE: {report['unreliable'][0]}" in proc.stdout.splitlines()
    assert report['efficiency'] == pytest.approx(report['speedup'] / report['ceiling'])
    assert report['peak_memory_sparse_mb'] <= report['peak_memory_complete_mb']
    assert '4/4' in proc.stderr  # the progress bar
    assert 'speedup' in proc.stdout and 'efficiency' in proc.stdout


def test_visualize_dispatch_writes_the_picture(trained, digits_root, tmp_path):
    cfg_path, ckpt = trained
    folder = osp.join(digits_root, 'target/val/3')
    image = osp.join(folder, sorted(os.listdir(folder))[0])
    out = str(tmp_path / 'dispatch.png')
    proc = run_tool('tools/analysis/visualize_dispatch.py', cfg_path, ckpt, image, '--out', out)
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert len(report['keep_rate_per_site']) == TINY_VIT['arch']['depth']
    width, height = Image.open(out).size
    assert width > 300 and height > 150

    # an existing picture is never replaced silently
    before = open(out, 'rb').read()
    again = run_tool('tools/analysis/visualize_dispatch.py', cfg_path, ckpt, image, '--out', out)
    assert again.returncode != 0 and 'exists; not overwriting it' in again.stderr
    assert open(out, 'rb').read() == before
    forced = run_tool('tools/analysis/visualize_dispatch.py', cfg_path, ckpt, image, '--out', out,
                      '--force')
    assert forced.returncode == 0, forced.stderr


def test_bad_arguments_exit_with_a_clear_message(trained, tmp_path):
    cfg_path, _ = trained
    proc = run_tool('tools/analysis/get_flops.py', 'configs/no/such_config.py')
    assert proc.returncode != 0
    assert 'config file not found: configs/no/such_config.py' in proc.stderr

    other = build_model(tiny_digits_cfg('unused', str(tmp_path),
                                        **{'model.backbone.arch.embed_dims': 32,
                                           'model.head.in_channels': 32}))
    wrong = str(tmp_path / 'other_arch.pth')
    torch.save({'state_dict': other.state_dict()}, wrong)
    proc = run_tool('tools/analysis/benchmark.py', cfg_path, '--checkpoint', wrong)
    assert proc.returncode != 0
    assert 'does not fit the model of this config' in proc.stderr
    assert 'backbone.vit.pos_embed: checkpoint (1, 17, 32) vs model (1, 17, 64)' in proc.stderr
    proc = run_tool('tools/analysis/benchmark.py', cfg_path, '--dtype', 'float16')
    assert proc.returncode != 0
    assert "argument --dtype: invalid choice: 'float16' (choose from" in proc.stderr
    proc = run_tool('tools/analysis/benchmark.py', cfg_path, '--dtype', 'bfloat16',
                    '--merge-r', '2')
    assert proc.returncode != 0
    assert '--merge-r times float32 runs; it does not combine with --dtype' in proc.stderr
