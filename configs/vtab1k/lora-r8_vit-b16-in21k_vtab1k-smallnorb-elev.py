# VTAB-1K smallnorb-elev: LoRA rank 8 on q and v (0.29 M parameters; no dispatch).
# Paper (Table 3): 44.0 top-1.
_base_ = '../_base_/vtab1k_lora-r8_vit-b16.py'

model = dict(head=dict(num_classes=9))
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = val_dataloader
