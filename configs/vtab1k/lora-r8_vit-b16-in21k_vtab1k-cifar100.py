# VTAB-1K cifar100: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 67.1 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=100))
train_dataloader = dict(dataset=dict(task='cifar'))
val_dataloader = dict(dataset=dict(task='cifar'))
test_dataloader = val_dataloader
