"""Test-only hook: every rank writes its final weights, to compare them across ranks."""
import os

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SaveRankWeightsHook(Hook):

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(model.state_dict(), os.path.join(runner.work_dir, f'rank{get_rank()}.pth'))
