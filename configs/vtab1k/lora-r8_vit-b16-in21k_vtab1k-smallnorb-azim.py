# VTAB-1K smallnorb-azim: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 31.0 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=18))
train_dataloader = dict(dataset=dict(task='smallnorb_azi'))
val_dataloader = dict(dataset=dict(task='smallnorb_azi'))
test_dataloader = val_dataloader
