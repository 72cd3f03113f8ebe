# VTAB-1K camelyon: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 84.9 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=2))
train_dataloader = dict(dataset=dict(task='patch_camelyon'))
val_dataloader = dict(dataset=dict(task='patch_camelyon'))
test_dataloader = val_dataloader
