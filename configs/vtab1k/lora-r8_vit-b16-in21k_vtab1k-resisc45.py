# VTAB-1K resisc45: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 84.4 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=45))
train_dataloader = dict(dataset=dict(task='resisc45'))
val_dataloader = dict(dataset=dict(task='resisc45'))
test_dataloader = val_dataloader
