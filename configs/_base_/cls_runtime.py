# Runtime of every DyT classification config: mmpretrain's defaults + the DyT layer.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['dyt_mm.cls'], allow_failed_imports=False)
# mmpretrain's visualizer again, without the `_scope_` key that inheriting across packages
# adds: mmpretrain's browse_dataset passes the dict's keys to UniversalVisualizer itself
visualizer = dict(_delete_=True, type='UniversalVisualizer',
                  vis_backends=[dict(type='LocalVisBackend')])
runner_type = 'DyTRunner'  # tensor-only loading of checkpoints, full unpickling only to resume
# tau = 5 constant as in the paper; final_tau=0.1 gives the 5 -> 0.1 schedule of Table 9.
custom_hooks = [dict(type='DyTHook', tau=5.0)]
# A rank that hangs (stuck in data loading, say) makes the others wait in a collective; after
# this many seconds they stop with an error naming env_cfg.dist_cfg.timeout (torch's default).
env_cfg = dict(dist_cfg=dict(timeout=1800))
