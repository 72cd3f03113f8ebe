# VTAB-1K retinopathy: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 73.6 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=5))
train_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
val_dataloader = dict(dataset=dict(task='diabetic_retinopathy'))
test_dataloader = val_dataloader
