# Everything a VTAB-1K task config of LoRA rank 8 on q and v shares: separate low-rank updates
# of the query and value projections (LoRA's default targets, as HF PEFT and the PETL baselines;
# 12 x 2 x 2 x 768 x 8 = 0.29 M parameters; no dispatch), with the DyT VTAB-1K setup (data, 100
# epochs, lr 1e-3).
# Paper (Table 3): 17.58 GFLOPs.
_base_ = './vtab1k_dyt_vit-b16.py'

model = dict(
    backbone=dict(adapter=dict(_delete_=True, type='LoRA', rank=8), dispatch=None),
    dyt_loss=dict(rate_weight=0.0, complete_weight=0.0, distill_weight=0.0))
