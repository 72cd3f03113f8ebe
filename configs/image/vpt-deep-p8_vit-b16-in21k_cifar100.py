# CIFAR-100: VPT-deep, 8 prompts per layer (0.07 M parameters; no dispatch).
# Paper (Table 6): 91.46 top-1, 18.32 GFLOPs.
_base_ = './dyt-r0.5_vit-b16-in21k_cifar100.py'

model = dict(
    backbone=dict(
        adapter=dict(_delete_=True, type='VPTPrompts', num_prompts=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
