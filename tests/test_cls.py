"""The mmpretrain layer: losses, hook, data set, Runner training, checkpoints, tools."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_VIT
from mmengine.registry import init_default_scope
from PIL import Image

import dyt_mm
import dyt_mm.cls  # noqa: F401
from dyt_mm.engine import DispatchMetricsHook, DyTHook, DyTScheduleHook
from dyt_mm.models.dyt import ViTFlops

init_default_scope('mmpretrain')


def build_classifier(**dyt_loss):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='DyTImageClassifier',
        backbone=dict(type='DyTVisionTransformer', adapter=dict(bottleneck=4, dropout=0.0),
                      **TINY_VIT),
        head=dict(type='LinearClsHead', num_classes=5, in_channels=64,
                  loss=dict(type='CrossEntropyLoss')),
        dyt_loss=dyt_loss))


def samples(labels):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(int(y)) for y in labels]


def randomise_trainable(model, std=0.3):
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=std)


# ------------------------------------------------------------------ losses
def test_loss_terms_match_their_definitions():
    model = build_classifier(target_rate=0.3, rate_weight=2.0, complete_weight=0.5,
                             distill_weight=0.7).train()
    randomise_trainable(model)
    x, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 3, 4])

    torch.manual_seed(7)
    losses = model.loss(x, samples(labels))

    # The same computation spelled out: the dynamic pass draws the same Gumbel noise.
    torch.manual_seed(7)
    with dyt_mm.dyt_mode(model, 'masked'):
        out = model.backbone.vit(x)
    dynamic = model.head.fc(out.tokens[:, 0])
    with dyt_mm.dyt_mode(model, 'complete'):
        complete = model.head.fc(model.backbone.vit(x).tokens[:, 0])

    def cross_entropy(logits):
        return -logits.log_softmax(-1)[torch.arange(3), labels].mean()

    p_t = complete.softmax(-1)
    kl = (p_t * (p_t.log() - dynamic.log_softmax(-1))).sum() / 3
    rate = 2.0 * (out.masks.mean() - 0.3)**2
    assert set(losses) == {'loss_cls', 'loss_complete', 'loss_distill', 'loss_rate'}
    torch.testing.assert_close(losses['loss_cls'], cross_entropy(dynamic))
    torch.testing.assert_close(losses['loss_complete'], 0.5 * cross_entropy(complete))
    torch.testing.assert_close(losses['loss_distill'], 0.7 * kl)
    torch.testing.assert_close(losses['loss_rate'], rate)


def count_complete_passes(model, x, labels):
    passes = []
    handle = model.backbone.vit.register_forward_hook(
        lambda m, i, o: passes.append(m.mode))
    losses = model.loss(x, samples(labels))
    handle.remove()
    return losses, passes


def test_zero_weights_remove_terms_and_the_complete_pass():
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    model = build_classifier(complete_weight=0.0, distill_weight=0.0, rate_weight=0.0).train()
    losses, passes = count_complete_passes(model, x, labels)
    assert set(losses) == {'loss_cls'} and passes == ['masked']

    model = build_classifier(complete_weight=0.0, distill_weight=1.0).train()
    losses, passes = count_complete_passes(model, x, labels)
    assert set(losses) == {'loss_cls', 'loss_distill', 'loss_rate'}
    assert passes == ['masked', 'complete']


def test_distillation_gradient_flows_through_the_student_only():
    model = build_classifier(complete_weight=0.0, rate_weight=0.0).train()
    randomise_trainable(model)
    x, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    torch.manual_seed(3)
    model.loss(x, samples(labels))['loss_distill'].backward()
    grad = model.head.fc.weight.grad.clone()

    model.zero_grad()
    torch.manual_seed(3)
    with dyt_mm.dyt_mode(model, 'masked'):
        student = model.head(model.backbone(x))
    with dyt_mm.dyt_mode(model, 'complete'), torch.no_grad():
        teacher = model.head(model.backbone(x))
    F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), log_target=True,
             reduction='batchmean').backward()
    torch.testing.assert_close(grad, model.head.fc.weight.grad)


def test_predict_runs_sparse_and_matches_masked():
    model = build_classifier().eval()
    randomise_trainable(model)
    x = torch.randn(4, 3, 32, 32)
    modes = []
    handle = model.backbone.vit.register_forward_hook(lambda m, i, o: modes.append(m.mode))
    with torch.no_grad():
        sparse = torch.stack([s.pred_score for s in model.predict(x)])
        with dyt_mm.dyt_mode(model, 'masked'):
            masked = model.head(model.backbone(x)).softmax(-1)
    handle.remove()
    assert modes[0] == 'sparse' and model.backbone.vit.mode == 'masked'
    torch.testing.assert_close(sparse, masked, atol=1e-5, rtol=0)


def test_bad_mode_and_rate_are_rejected():
    with pytest.raises(ValueError, match="unknown test_mode 'fast'"):
        from mmpretrain.registry import MODELS
        MODELS.build(dict(type='DyTImageClassifier',
                          backbone=dict(type='DyTVisionTransformer', **TINY_VIT),
                          head=dict(type='LinearClsHead', num_classes=2, in_channels=64),
                          test_mode='fast'))
    with pytest.raises(ValueError, match=r'r must lie in \(0, 1\], got 1.5'):
        build_classifier(target_rate=1.5)


# -------------------------------------------------------------------- hook
def test_hook_schedule():
    hook = DyTScheduleHook(tau=5.0, final_tau=0.1, rate_warmup_iters=10, distill_warmup_iters=4)
    configured = dict(target_rate=0.5, distill_weight=1.0)
    first, middle, last = (hook.scheduled_values(i, 101, **configured) for i in (0, 50, 100))
    assert first['tau'] == pytest.approx(5.0) and last['tau'] == pytest.approx(0.1)
    assert middle['tau'] == pytest.approx((5.0 * 0.1)**0.5)  # exponential: geometric mean
    assert first['target_rate'] == 1.0 and last['target_rate'] == 0.5
    assert hook.scheduled_values(5, 101, **configured)['target_rate'] == pytest.approx(0.75)
    assert first['distill_weight'] == 0.0
    assert hook.scheduled_values(2, 101, **configured)['distill_weight'] == pytest.approx(0.5)
    constant = DyTScheduleHook(tau=5.0)
    assert constant.scheduled_values(30, 101, target_rate=0.7, distill_weight=1.0) == dict(
        tau=5.0, target_rate=0.7, distill_weight=1.0)
    for hook_type in (DyTScheduleHook, DyTHook):
        with pytest.raises(ValueError, match='final_tau must be > 0, got 0'):
            hook_type(final_tau=0)


def test_hook_figures_follow_the_kept_counts():
    model = build_classifier()
    hook = DispatchMetricsHook()

    class FakeRunner:  # only `.model` is read by the hook's discovery
        pass

    runner = FakeRunner()
    runner.model = model
    hook.before_run(runner)
    vit = model.backbone.vit
    kept = torch.tensor([[16, 8], [0, 4]])  # 2 samples x 2 layers, 16 image tokens
    figures = hook.dispatch_figures(kept, 16)
    assert figures['keep_rate_l0'] == pytest.approx(0.5)
    assert figures['keep_rate_l1'] == pytest.approx(0.375)
    assert figures['keep_rate'] == pytest.approx(28 / 64)
    flops = ViTFlops(vit)
    expected = flops.per_sample(kept).mean().item()
    assert figures['gflops'] == pytest.approx(expected / 1e9)
    assert figures['flops_ratio'] == pytest.approx(expected / flops.dense())
    hook.after_run(runner)


# ------------------------------------------------------------------ VTAB1k
def write_vtab_task(root, task='dtd', num_images=3, label=1):
    folder = osp.join(root, task, 'images')
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i in range(num_images):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(osp.join(folder, f'{i}.jpg'))
        lines.append(f'images/{i}.jpg {label}')
    for name in ('train800val200.txt', 'test.txt'):
        with open(osp.join(root, task, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def test_vtab1k_reads_the_ssf_layout(tmp_path):
    from dyt_mm.cls import VTAB1k
    write_vtab_task(str(tmp_path))
    dataset = VTAB1k(data_root=str(tmp_path), task='dtd', split='train',
                     pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    assert len(dataset) == 3 and len(dataset.CLASSES) == 47
    item = dataset[2]
    assert item['data_samples'].gt_label.item() == 1
    assert item['inputs'].shape == (3, 8, 8) and int(item['inputs'][0, 0, 0]) == 80
    assert dataset.get_data_info(0)['img_path'] == osp.join(str(tmp_path), 'dtd', 'images/0.jpg')


def test_vtab1k_errors_name_the_problem(tmp_path):
    from dyt_mm.cls import VTAB1k
    root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='dtd/val200.txt'):
        write_vtab_task(root)
        VTAB1k(data_root=root, task='dtd', split='val')
    os.remove(osp.join(root, 'dtd', 'images', '1.jpg'))
    with pytest.raises(FileNotFoundError, match=r'images/1.jpg'):
        VTAB1k(data_root=root, task='dtd', split='test')
    write_vtab_task(root, task='kitti', label=4)
    with pytest.raises(ValueError, match=r"label 4 is outside 0..3 for task 'kitti'"):
        VTAB1k(data_root=root, task='kitti')
    with pytest.raises(ValueError, match="unknown VTAB-1K task 'cifar100'"):
        VTAB1k(data_root=root, task='cifar100')


def test_svhn_reads_the_official_mat_files(tmp_path):
    from scipy.io import savemat

    from dyt_mm.cls import SVHN
    images = np.random.default_rng(0).integers(0, 255, (32, 32, 3, 4), dtype=np.uint8)
    savemat(str(tmp_path / 'test_32x32.mat'), {'X': images, 'y': np.array([[10], [1], [9], [10]])})
    dataset = SVHN(data_root=str(tmp_path), split='test', pipeline=[dict(type='PackInputs')])
    assert [dataset[i]['data_samples'].gt_label.item() for i in range(4)] == [0, 1, 9, 0]
    # stored as RGB in the file, BGR in the pipeline (as mmcv loads images)
    np.testing.assert_array_equal(dataset[1]['inputs'].numpy().transpose(1, 2, 0),
                                  images[..., 1][..., ::-1])
    with pytest.raises(FileNotFoundError, match='train_32x32.mat'):
        SVHN(data_root=str(tmp_path), split='train')
