# VTAB-1K clevr-dist: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 69.2 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=6))
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = val_dataloader
