"""A converted EVA-02 checkpoint (SwiGLU, inner norms, 2-D RoPE) trained through tools/train.py."""
import os.path as osp

import torch
from helpers import run_tool, tiny_digits_cfg
from safetensors.torch import save_file
from test_convert import converter_main

from dyt_mm.utils.checkpoint import load_tensors


def test_converted_eva02_trains_and_validates_through_tools_train(digits_root, tmp_path, capsys):
    from timm.models.eva import Eva
    torch.manual_seed(0)
    eva = Eva(img_size=32, patch_size=8, embed_dim=192, depth=2, num_heads=3,
              mlp_ratio=4 * 2 / 3, qkv_fused=False, swiglu_mlp=True, scale_mlp=True,
              scale_attn_inner=True, use_rot_pos_emb=True, ref_feat_shape=(16, 16),
              global_pool='token', num_classes=10)
    src, converted = tmp_path / 'eva02.safetensors', tmp_path / 'eva02_dyt.pth'
    save_file({k: v.contiguous() for k, v in eva.state_dict().items()}, str(src))
    assert converter_main()([str(src), str(converted), '--img-size', '32']) == 0
    assert 'family eva02' in capsys.readouterr().out

    meta = torch.load(converted, weights_only=True)['meta']
    work_dir = tmp_path / 'work'
    cfg = tiny_digits_cfg(digits_root, str(work_dir), str(converted), log_level='INFO',
                          **{'model.head.in_channels': 192})
    # what the converter says the weights need, as a user puts it in the config
    cfg.model.backbone.update(meta['vit'], arch=meta['arch'], patch_size=meta['patch_size'])
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    proc = run_tool('tools/train.py', cfg_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'loss_distill' in log and 'accuracy/top1' in log and 'keep_rate' in log
    trained = load_tensors(osp.join(work_dir, 'iter_4.pth'))['state_dict']
    # adapters and dispatchers of the SwiGLU blocks were trained, the base stayed frozen
    assert 'backbone.vit.blocks.1.dispatchers.mlp.gate.weight' in trained
    assert not any('fc1_g' in k or 'qkv' in k for k in trained)
