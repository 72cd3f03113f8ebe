# VTAB-1K clevr-count: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 82.9 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=8))
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = val_dataloader
