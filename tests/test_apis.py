"""dyt_mm.apis and the toolboxes' own inference entry points on DyT checkpoints, on what the
three demos leave behind (with random weights). tests/test_docs.py runs the docs' blocks on it."""
import os
import os.path as osp
import types

import numpy as np
import pytest
import torch
from helpers import REPO
from mmengine.config import Config
from PIL import Image

from dyt_mm import ViTFlops
from dyt_mm.analysis import build_model, dyt_parts
from dyt_mm.apis import inference, init_model
from dyt_mm.engine import DyTHook
from dyt_mm.models.dyt.dispatcher import TokenDispatcher

RUN = '20250101_000000'
CLASSES = {'cls': tuple('0123456789'),
           'seg': ('background', 'disc', 'square', 'triangle', 'cross'),
           'video': ('still', 'horizontal', 'vertical', 'diagonal')}
# What each demo leaves in the repository root: its config, its last checkpoint, an input file.
DEMOS = {
    'cls': ('configs/demo/dyt-r0.5_vit-tiny-p4_digits-target.py',
            f'work_dirs/digits_demo/target_{RUN}/epoch_20.pth',
            'data/digits/target/val/3/0045.png'),
    'seg': ('configs/seg/demo/dyt-r0.5_upernet_vit-tiny-p8_shapes-target.py',
            f'work_dirs/seg_demo/target_{RUN}/iter_400.pth',
            'data/seg_shapes/target/images/validation/shapes_validation_00000.jpg'),
    'video': ('configs/video/demo/dyt-r0.5_vit-tiny-p8_8x2x1_moving-shapes.py',
              f'work_dirs/video_demo/{RUN}/epoch_20.pth',
              'data/moving_shapes/videos/val/00000.mp4'),
}


def full_checkpoint_path(task: str) -> str:
    return DEMOS[task][1].replace('.pth', '_full.pth')


def training_checkpoint(model, dataset_meta: dict) -> dict:
    """A checkpoint as mmengine's Runner writes it: the message hub holds objects that
    ``torch.load(weights_only=True)`` refuses."""
    from mmengine.logging import MessageHub
    hub = MessageHub(f'apis-test-{id(model)}')
    hub.update_scalar('train/loss', 1.0)
    return dict(meta=dict(dataset_meta=dataset_meta, epoch=20, seed=0),
                state_dict=model.state_dict(), message_hub=hub.state_dict())


def write_inputs(root: str) -> None:
    rng = np.random.default_rng(0)
    for task, size in (('cls', (32, 32)), ('seg', (64, 128))):  # seg: 3 windows of 64 x 64
        path = osp.join(root, DEMOS[task][2])
        os.makedirs(osp.dirname(path))
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    from dyt_mm.demo.video_clips import make_clip, write_clip
    path = osp.join(root, DEMOS['video'][2])
    os.makedirs(osp.dirname(path))
    write_clip(path, make_clip(1, rng))


@pytest.fixture(scope='module', autouse=True)
def restored_default_scope():
    """The toolboxes' init functions set the global default scope: give the next tests theirs."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def demo_tree(tmp_path_factory, single_thread):
    """A checkout after the three demos: the repository's configs, random-weight checkpoints
    where the demos write theirs (adapter-only for cls and seg, as the demos save them, plus a
    full one) and one input file each. Returns (root, {task: the state the model must get})."""
    root = str(tmp_path_factory.mktemp('checkout'))
    os.symlink(osp.join(REPO, 'configs'), osp.join(root, 'configs'))
    write_inputs(root)
    states = {}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for task, (config, checkpoint, _) in DEMOS.items():
            cfg = Config.fromfile(config)
            torch.manual_seed(0)
            model = build_model(cfg)
            for name, buffer in model.named_buffers():
                if name.endswith(('running_mean', 'running_var')):  # learnt statistics
                    buffer.uniform_(0.5, 1.5)
            os.makedirs(osp.dirname(checkpoint))
            saved = training_checkpoint(model, dict(classes=CLASSES[task]))
            torch.save(saved, full_checkpoint_path(task))
            base = cfg.model.backbone.get('init_cfg')
            if base:  # the demo saves adapter-only checkpoints; its base is the stage-1 ViT
                vit = model.backbone.vit
                torch.save({'state_dict': {k: v for k, v in vit.state_dict().items()
                                           if not vit.is_dyt_param(k)}}, base.checkpoint)
                DyTHook(save_trainable_only=True).before_save_checkpoint(
                    types.SimpleNamespace(model=model), saved)
            torch.save(saved, checkpoint)
            states[task] = model.state_dict()
    finally:
        os.chdir(cwd)
    return root, states


@pytest.fixture
def in_tree(demo_tree, monkeypatch):
    monkeypatch.chdir(demo_tree[0])
    return demo_tree[1]


def assert_state(model, expected) -> None:
    state = model.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def keep_every_token(model) -> None:
    _, vit = dyt_parts(model)
    with torch.no_grad():
        for dispatcher in (m for m in vit.modules() if isinstance(m, TokenDispatcher)):
            for name, param in dispatcher.named_parameters():
                param.fill_(10.0 if name.endswith('bias') else 0.0)


@pytest.mark.parametrize('task', DEMOS)
def test_init_model_loads_adapter_only_and_full_checkpoints(task, in_tree):
    config, checkpoint, _ = DEMOS[task]
    for path in (checkpoint, full_checkpoint_path(task)):
        model = init_model(config, path)
        assert_state(model, in_tree[task])  # the base (from init_cfg) and the BN statistics too
        assert not model.training and model.cfg.model.type == Config.fromfile(config).model.type
        assert model.dataset_meta['classes'] == CLASSES[task]


# ViT images behind one input: cls one image; seg 64 x 128 -> 3 windows of 64 x 64 (stride 48);
# video 3 views x 8 frames.
@pytest.mark.parametrize('task, vit_images', [('cls', 1), ('seg', 3), ('video', 24)])
def test_inference_counts_every_crop_view_and_frame(task, vit_images, in_tree):
    config, checkpoint, path = DEMOS[task]
    model = init_model(config, checkpoint)
    result = inference(model, path)
    _, vit = dyt_parts(model)
    flops = ViTFlops(vit)
    # nothing skipped, plus the dispatchers' gates: one Linear(C, 1) per site and image token
    gates = len(vit.sites) * flops.num_image_tokens * vit.embed_dims
    complete = vit_images * (flops.complete() + gates) / 1e9
    assert result.keep_rates.shape == (len(vit.sites), )
    assert 0 < result.keep_rates.mean() < 1 and 0 < result.gflops < complete
    keep_every_token(model)
    [result] = inference(model, [path])
    assert torch.equal(result.keep_rates, torch.ones(len(vit.sites)))
    assert result.gflops == pytest.approx(complete, rel=1e-9)


@pytest.mark.parametrize('task, kind', [('cls', 'adapter-only'), ('cls', 'full'),
                                        ('seg', 'adapter-only'), ('seg', 'full'),
                                        ('video', 'full')])
def test_toolbox_inferencers_load_dyt_checkpoints(task, kind, in_tree):
    config, checkpoint, path = DEMOS[task]
    if kind == 'full':
        checkpoint = full_checkpoint_path(task)
    ours = inference(init_model(config, checkpoint), path)
    if task == 'cls':
        from mmengine.registry import DefaultScope
        from mmpretrain import ImageClassificationInferencer, get_model
        assert_state(get_model(config, pretrained=checkpoint), in_tree[task])
        # its pipeline is built in the current default scope, which other tests change
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            [theirs] = ImageClassificationInferencer(config, pretrained=checkpoint)(path)
        assert np.allclose(theirs['pred_scores'], ours.pred_score.numpy(), atol=1e-6)
    elif task == 'seg':
        from mmseg.apis import MMSegInferencer
        segmenter = MMSegInferencer(config, checkpoint, device='cpu')
        assert_state(segmenter.model, in_tree[task])
        theirs = segmenter(path, return_datasamples=True)
        assert torch.equal(theirs.pred_sem_seg.data, ours.pred_sem_seg.data)
    else:
        from mmaction.apis import inference_recognizer, init_recognizer
        from mmaction.apis.inferencers import ActionRecogInferencer
        recognizer = init_recognizer(config, checkpoint, device='cpu')
        assert_state(recognizer, in_tree[task])
        theirs = inference_recognizer(recognizer, path)
        assert torch.allclose(theirs.pred_score, ours.pred_score, atol=1e-6)
        theirs = ActionRecogInferencer(config, checkpoint, device='cpu')(
            path, return_datasamples=True)['predictions'][0]
        assert torch.allclose(theirs.pred_score, ours.pred_score, atol=1e-6)


def test_adapter_only_checkpoint_without_a_base_is_an_error(in_tree):
    from mmpretrain import get_model
    config, checkpoint, _ = DEMOS['cls']
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    with pytest.raises(ValueError, match=r"holds only the trainable DyT parameters.*init_cfg"):
        get_model(cfg, pretrained=checkpoint)


def test_bad_input_is_named(in_tree):
    config, checkpoint, _ = DEMOS['cls']
    with pytest.raises(FileNotFoundError, match='no/such.pth'):
        init_model(config, 'no/such.pth')
    with pytest.raises(ValueError, match='does not fit the model'):
        init_model(config, full_checkpoint_path('seg'))
    model = init_model(config, checkpoint)
    with pytest.raises(FileNotFoundError, match='no/such.png'):
        inference(model, 'no/such.png')
    del model.cfg
    with pytest.raises(ValueError, match='init_model'):
        inference(model, DEMOS['cls'][2])
