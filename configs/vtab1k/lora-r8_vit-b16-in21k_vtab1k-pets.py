# VTAB-1K pets: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 90.4 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=37))
train_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
val_dataloader = dict(dataset=dict(task='oxford_iiit_pet'))
test_dataloader = val_dataloader
