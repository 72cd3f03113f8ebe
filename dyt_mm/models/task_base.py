"""What the toolbox models share: the DyT options, training terms and sparse inference."""
import math
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from .dyt import MODES, DyTObjective, dyt_mode
from .dyt.registry import check_choice


def _unchanged(outputs: Any) -> Any:
    return outputs


class DyTTaskMixin:
    """Mixed in before a toolbox model class (ImageClassifier, EncoderDecoder,
    Recognizer3D, MaskRCNN): it takes the DyT options below on top of the
    toolbox's own, checks that the backbone is a ``backbone_type``, and runs
    val/test (``predict``) in ``test_mode``; the subclass builds its
    ``loss()`` with :meth:`dyt_losses`.

    Args:
        dyt_loss: keyword arguments of :class:`dyt_mm.DyTObjective`
            (target_rate, rate_weight, complete_weight, distill_weight).
        train_mode: execution mode of the dynamic pass in training
            (``masked``; ``complete`` trains a plain adapter model).
        test_mode: execution mode of val/test (``sparse``: really faster).
        *args, **kwargs: the toolbox model's own.
    """

    backbone_type: type  # the DyT backbone class (or base class) the toolbox model reads

    def __init__(self, *args, dyt_loss: Optional[dict] = None, train_mode: str = 'masked',
                 test_mode: str = 'sparse', **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.backbone, self.backbone_type):
            raise TypeError(f'{type(self).__name__} needs a {self.backbone_type.__name__} '
                            f'backbone, got {type(self.backbone).__name__}')
        check_choice('train_mode', train_mode, MODES)
        check_choice('test_mode', test_mode, MODES)
        self.dyt_objective = DyTObjective(**(dyt_loss or {}))
        objective = self.dyt_objective
        if not self.backbone.vit.has_dispatch and (objective.rate_weight > 0
                                                   or objective.needs_complete):
            # nothing is skipped: the rate loss has nothing to train and the complete pass
            # would repeat the dynamic one
            raise ValueError(
                'this model has no dispatchers (dispatch=None), so the DyT terms do not '
                'apply; set dyt_loss=dict(rate_weight=0, complete_weight=0, distill_weight=0) '
                f'instead of {objective!r}')
        self.train_mode = train_mode
        self.test_mode = test_mode

    def features_and_masks(self, inputs: torch.Tensor, mode: str) -> Tuple[Any, torch.Tensor]:
        """The backbone's features (through the neck, if any) of a forward in execution
        ``mode``, and its dispatch masks."""
        with dyt_mode(self.backbone, mode):
            feats, masks = self.backbone.forward_with_masks(inputs)
        if self.with_neck:
            feats = self.neck(feats)
        return feats, masks

    def dyt_losses(self, inputs: torch.Tensor,
                   task_losses: Callable[[Any], Dict[str, torch.Tensor]],
                   complete_loss: Callable[[Any], torch.Tensor],
                   distill_logits: Callable[[Any], torch.Tensor] = _unchanged,
                   head: Callable[[Any], Any] = _unchanged,
                   class_dim: int = 1) -> Dict[str, torch.Tensor]:
        """The toolbox's own losses of the dynamic pass plus the DyT terms.

        Each pass runs :meth:`features_and_masks` of ``inputs`` and gives
        ``head(features)`` (the logits, or whatever the losses read: by default
        the features) to the functions below. ``task_losses(outputs)`` are the
        head's losses of the dynamic model as the toolbox names them;
        ``complete_loss(outputs)`` is the one scalar of the complete model that
        ``loss_complete`` weighs; ``distill_logits`` picks (and resizes) the
        logits that ``loss_distill`` compares. The complete pass runs only when
        a term needs it.
        """
        def run(mode: str) -> Tuple[Any, torch.Tensor]:
            feats, masks = self.features_and_masks(inputs, mode)
            return head(feats), masks

        objective = self.dyt_objective
        outputs, masks = run(self.train_mode)
        losses = task_losses(outputs)
        dynamic = teacher = None
        if objective.needs_complete:
            complete, _ = run('complete')
            if objective.complete_weight > 0:
                losses['loss_complete'] = objective.complete_weight * complete_loss(complete)
            if objective.distill_weight > 0:
                dynamic, teacher = distill_logits(outputs), distill_logits(complete)
        vit = self.backbone.vit
        # token merging: each site saw fewer tokens than the (padded) masks hold
        site_tokens = vit.site_tokens(masks.shape[-1]).to(masks.device) if vit.merge_r else None
        losses.update(objective.extra_terms(masks, dynamic, teacher, class_dim, site_tokens))
        return losses

    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        """mmengine's loss parsing, refusing a non-finite term before the optimizer step.

        A NaN or inf loss (a diverging learning rate, a NaN pixel) would
        otherwise be back-propagated into the weights, logged as ``nan`` and
        saved; here it stops the run, naming the iteration and the term, while
        the weights still hold the last finite step. Called by the model's and
        by the DDP wrapper's ``train_step`` alike.
        """
        from mmengine.dist import all_reduce
        parsed, log_vars = super().parse_losses(losses)
        # every rank stops together (one rank alone would leave the others waiting)
        non_finite = (~torch.isfinite(parsed.detach())).float().reshape(1)
        all_reduce(non_finite, op='max')
        if non_finite.item():
            raise FloatingPointError(non_finite_loss_message(log_vars))
        return parsed, log_vars

    def predict(self, *args, **kwargs):
        with dyt_mode(self.backbone, self.test_mode):
            return super().predict(*args, **kwargs)


def non_finite_loss_message(log_vars: Dict[str, torch.Tensor]) -> str:
    from mmengine.logging import MessageHub
    iteration = MessageHub.get_current_instance().get_info('iter')
    where = f'at iteration {iteration + 1}' if iteration is not None else 'in training'
    bad = [f'{k}={float(v):g}' for k, v in log_vars.items()
           if k != 'loss' and not math.isfinite(float(v))]
    return (f'non-finite loss {where}: {", ".join(bad) or "loss=" + str(float(log_vars["loss"]))};'
            ' training stopped before this step changed the weights (a learning rate too '
            'large, or NaN/inf in the input data?)')
