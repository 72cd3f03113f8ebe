# VTAB-1K flowers102: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 98.8 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='oxford_flowers102'))
val_dataloader = dict(dataset=dict(task='oxford_flowers102'))
test_dataloader = val_dataloader
