# VTAB-1K dsprites-loc: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 75.7 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(task='dsprites_loc'))
val_dataloader = dict(dataset=dict(task='dsprites_loc'))
test_dataloader = val_dataloader
