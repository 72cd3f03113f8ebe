# Runtime of every DyT detection config: mmdet's defaults + the DyT layer.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['dyt_mm.det'], allow_failed_imports=False)
runner_type = 'DyTRunner'  # tensor-only loading of checkpoints, full unpickling only to resume
# tau = 5 constant as in the paper; the hook logs keep rates and backbone GFLOPs at train/val/test.
custom_hooks = [dict(type='DyTHook', tau=5.0)]
# A rank that hangs (stuck in data loading, say) makes the others wait in a collective; after
# this many seconds they stop with an error naming env_cfg.dist_cfg.timeout (torch's default).
env_cfg = dict(dist_cfg=dict(timeout=1800))
