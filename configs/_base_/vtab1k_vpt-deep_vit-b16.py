# Everything a VTAB-1K task config of VPT-deep (no dispatch) shares: the DyT VTAB-1K setup
# (data, 100 epochs, lr 1e-3) with this method's model. Each task config sets its own prompt
# count (num_prompts=None here, so one that forgets fails to build), VPT's per-task length for
# ViT-B/16 (supervised ImageNet-21k) with deep prompts:
#   natural:     cifar100 10, caltech101 10, dtd 10, flowers102 1, pets 1, svhn 50, sun397 5
#   specialized: camelyon 100, eurosat 100, resisc45 10, retinopathy 1
#   structured:  clevr-count 100, clevr-dist 200, dmlab 100, kitti-dist 100, dsprites-loc 100,
#                dsprites-ori 100, smallnorb-azim 200, smallnorb-elev 200
# Source: github.com/visinf/adapter_plus (Adapter+, CVPR 2024), conf/experiment/vtab/vpt.yaml at
# commit 191c4ab26fc97ea09ae390383ff79327822853ff, the lengths its VPT-deep baseline runs with.
# VPT's own repository agrees where it states lengths: KMnP/vpt demo.ipynb (commit
# 7f3942e49fb062818f17fa11ec4b6d371ef962c8) runs dmlab 100, sun397 5, eurosat 100 "with the
# hyperparameters from our paper". VPT's full table (a spreadsheet its README links to) could
# not be read here.
# Mean over the 19 tasks: 73.6 prompts, 12 x 768 x 73.6 = 0.678 M parameters and 24.56 GFLOPs.
# Paper (Table 3): 0.53 M and 18.30 GFLOPs; no one set of lengths gives both (18.30 G is about
# 8 prompts' cost), see docs/comparing_methods.md.
_base_ = './vtab1k_dyt_vit-b16.py'

model = dict(
    backbone=dict(
        adapter=dict(_delete_=True, type='VPTPrompts', num_prompts=None), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
