# VTAB-1K caltech101: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 91.4 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=102))
train_dataloader = dict(dataset=dict(task='caltech101'))
val_dataloader = dict(dataset=dict(task='caltech101'))
test_dataloader = val_dataloader
