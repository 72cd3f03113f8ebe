# VTAB-1K in the SSF layout (data/vtab-1k/<task>/{train800val200,test}.txt). The paper trains on
# train800val200 and reports the test split; images are resized to 224 with no augmentation.
dataset_type = 'VTAB1k'
data_root = 'data/vtab-1k'
task = 'cifar'

train_pipeline = [
    dict(type='LoadCheckedImage'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, task=task, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, task=task, split='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
