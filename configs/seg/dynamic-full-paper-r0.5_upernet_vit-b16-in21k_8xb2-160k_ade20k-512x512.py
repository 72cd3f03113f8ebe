# UperNet on ADE20K (160k iterations, 512 x 512 crops): Dynamic-Full as the paper states it ("TD
# + all params tuned", Table 10) and nothing more: DyT's token dispatch, r = 0.5, every ViT
# parameter trained, no adapter; L = L_cls + 2 L_rate (the paper gives the complete-model loss
# and distillation for DyT, not for this row); one lr for every parameter, the dispatchers' too:
# 1/10 of the base lr, the paper's rule for full tuning, the other row that trains the whole
# ViT. dyt-mm's own variant:
# dynamic-full-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py.
# Paper (Table 10): 45.74 mIoU, 582.46 GFLOPs.
_base_ = './dyt-r0.5_upernet_vit-b16-in21k_8xb2-160k_ade20k-512x512.py'

model = dict(backbone=dict(adapter=None, freeze_base=False),
             dyt_loss=dict(complete_weight=0.0, distill_weight=0.0))
optim_wrapper = dict(optimizer=dict(lr=1e-3 / 10))
