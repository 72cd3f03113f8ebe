# VTAB-1K eurosat: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 95.3 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=10))
train_dataloader = dict(dataset=dict(task='eurosat'))
val_dataloader = dict(dataset=dict(task='eurosat'))
test_dataloader = val_dataloader
