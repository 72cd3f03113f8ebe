"""The demo scripts' stages on the real digits files, shrunk to a few iterations."""
import glob
import os.path as osp
import re

import torch
from helpers import DIGITS_SOURCE_CONFIG, TINY_VIT, tiny_digits_cfg
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from dyt_mm import DyTViT
from dyt_mm.demo.stages import (adapt, figure_at_test, log_file, pretrain_source,
                                trainable_parameters)
from dyt_mm.models.dyt.pretrained import load_pretrained
from dyt_mm.utils.checkpoint import load_tensors, state_dict_of


def test_source_is_pretrained_once_then_adapted_in_a_fresh_dir(digits_root, tmp_path, capfd):
    source_cfg = tmp_path / 'source.py'
    target_cfg = tmp_path / 'target.py'
    tiny_digits_cfg(digits_root, '', config=DIGITS_SOURCE_CONFIG, max_iters=2,
                    val_interval=2).dump(str(source_cfg))
    # any Pretrained path: the stage-2 step points it at the exported base
    tiny_digits_cfg(digits_root, '', base_ckpt='unused.pth', max_iters=2,
                    val_interval=2, log_level='INFO').dump(str(target_cfg))
    work = str(tmp_path / 'work')

    base = pretrain_source(str(source_cfg), digits_root, work, 'a ViT', 'accuracy/top1')
    assert base == osp.join(work, 'source_vit.pth')
    exported = torch.load(base, weights_only=True)['state_dict']
    assert 'pos_embed' in exported and not any('adapter' in k or 'head' in k for k in exported)
    stamp = osp.getmtime(base)
    assert pretrain_source(str(source_cfg), digits_root, work, 'a ViT',
                           'accuracy/top1') == base
    assert osp.getmtime(base) == stamp  # reused, not trained or written again

    capfd.readouterr()
    runner, metrics = adapt(str(target_cfg), digits_root, work, base)
    # the terminal gets the progress lines; the run's full log is in its work dir
    console = capfd.readouterr()
    assert console.out.splitlines() == [
        f'[stage 2] DyT adaptation to the target domain (log: {log_file(runner)})',
        '[stage 2] testing on the target domain']
    assert not console.err
    with open(log_file(runner)) as f:
        log = f.read()
    assert 'Config:' in log and 'accuracy/top1' in log
    if not torch.cuda.is_available():
        assert 'GPU number: 1 (processes; no GPU here, the run uses the CPU)' in log
    assert osp.basename(runner.work_dir).startswith('target_')
    assert osp.dirname(runner.work_dir) == work
    assert 0 <= metrics['accuracy/top1'] <= 100
    assert 0 < figure_at_test(runner, 'keep_rate') <= 1
    # the frozen base came from the exported file
    vit = runner.model.backbone.vit
    assert torch.equal(vit.state_dict()['pos_embed'], exported['pos_embed'])
    assert 0 < trainable_parameters(runner) < sum(p.numel() for p in runner.model.parameters())


def test_an_epoch_based_stage_prints_a_line_per_epoch_with_its_eta(digits_root, tmp_path,
                                                                    capfd):
    source_cfg = tmp_path / 'source.py'
    cfg = tiny_digits_cfg(digits_root, '', config=DIGITS_SOURCE_CONFIG)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2)
    cfg.train_dataloader.dataset.indices = 32  # two iterations of 16 images an epoch
    cfg.dump(str(source_cfg))
    work = str(tmp_path / 'work')
    capfd.readouterr()
    pretrain_source(str(source_cfg), digits_root, work, 'a ViT', 'accuracy/top1', progress=True)
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].startswith('[stage 1] pre-training a ViT on the source domain (log: ')
    for epoch, line in zip((1, 2), lines[1:3]):
        assert re.fullmatch(rf'\[stage 1\] epoch {epoch}/2, loss \d+\.\d{{3}}, '
                            r'ETA \d+:\d\d:\d\d', line), line
    assert lines[2].endswith('ETA 0:00:00')  # nothing left after the last epoch
    assert lines[3].startswith('[stage 1] source-domain accuracy/top1 ') and len(lines) == 4


def test_the_source_stage_pretrains_a_plain_vit_and_exports_what_it_validated(digits_root,
                                                                              tmp_path):
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS

    # the demo's own stage-1 config: every parameter is the base's, all of it trains
    vit = MODELS.build(Config.fromfile(DIGITS_SOURCE_CONFIG).model).backbone.vit
    assert not vit.has_dispatch
    assert not [k for k in vit.state_dict() if vit.is_dyt_param(k)]
    assert all(p.requires_grad for p in vit.parameters())

    source_cfg = tmp_path / 'source.py'
    cfg = tiny_digits_cfg(digits_root, '', config=DIGITS_SOURCE_CONFIG, max_iters=2,
                          val_interval=2)
    cfg.dump(str(source_cfg))
    work = str(tmp_path / 'work')
    base = pretrain_source(str(source_cfg), digits_root, work, 'a ViT', 'accuracy/top1')

    # the model stage 1 validated, as its last checkpoint holds it
    last, = glob.glob(osp.join(work, 'source', '*', 'last_checkpoint'))
    with open(last) as f:
        ckpt = f.read().strip()
    trained = MODELS.build(cfg.model)
    trained.load_state_dict(state_dict_of(load_tensors(ckpt), ckpt))
    # the exported base in a plain ViT, as every later stage builds it
    plain = DyTViT(**TINY_VIT, adapter=None, dispatch=None)
    load_pretrained(plain, base)
    trained.eval(), plain.eval()

    val = Runner.build_dataloader(cfg.val_dataloader)
    with torch.no_grad():
        for data in val:
            images = trained.data_preprocessor(data, False)['inputs']
            expected = trained.extract_feat(images)
            got = (plain.pool(plain(images).tokens, 'cls_token'), )
            assert torch.equal(got[0], expected[0])
            assert torch.equal(trained.head(got), trained.head(expected))
