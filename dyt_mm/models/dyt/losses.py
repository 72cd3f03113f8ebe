"""The DyT training terms shared by every task."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from .registry import check_real


def mean_keep_rate(masks: torch.Tensor, site_tokens: Optional[torch.Tensor] = None
                   ) -> torch.Tensor:
    """Kept share of the image tokens over batch, dispatch sites and tokens.

    ``site_tokens``: ``(S,)`` image tokens each site saw when token merging
    shrinks them (:meth:`~.vit.DyTViT.site_tokens`; the masks are zero-padded
    after them); None: every site saw all ``masks.shape[-1]``.
    """
    if site_tokens is None:
        return masks.mean()
    return masks.sum() / (masks.shape[0] * site_tokens.sum())


def rate_loss(masks: torch.Tensor, target_rate: float,
              site_tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(mean keep rate - r)^2`` over batch, dispatch sites and image tokens.

    ``masks`` are the straight-through hard masks, so the gradient reaches the
    dispatchers. The mean is taken over the whole batch, as the official code
    does, not per sample; ``site_tokens`` as in :func:`mean_keep_rate`.
    """
    return (mean_keep_rate(masks, site_tokens) - target_rate)**2


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               class_dim: int = 1) -> torch.Tensor:
    """KL(teacher || student), teacher detached, no temperature.

    Summed over the class dimension and averaged over everything else: the
    batch for classification (``batchmean``), batch x pixels for segmentation.
    """
    student = F.log_softmax(student_logits, dim=class_dim)
    teacher = F.log_softmax(teacher_logits.detach(), dim=class_dim)
    kl = F.kl_div(student, teacher, reduction='none', log_target=True).sum(dim=class_dim)
    return kl.mean()


class DyTObjective:
    """Weights of the DyT terms, and the terms that do not need a task head.

    total = loss_cls + complete_weight * loss_complete
            + distill_weight * loss_distill + rate_weight * loss_rate

    A weight of 0 removes its term; when both ``complete_weight`` and
    ``distill_weight`` are 0 the complete (teacher) pass is not run at all.
    ``target_rate`` and the weights are plain attributes so that
    :class:`~dyt_mm.engine.DyTHook` can schedule them.
    """

    def __init__(self, target_rate: float = 0.5, rate_weight: float = 2.0,
                 complete_weight: float = 1.0, distill_weight: float = 1.0):
        weights = (('rate_weight', rate_weight), ('complete_weight', complete_weight),
                   ('distill_weight', distill_weight))
        check_real('dyt_loss target_rate', target_rate)
        if not 0.0 < target_rate <= 1.0:
            raise ValueError(f'target keep rate r must lie in (0, 1], got {target_rate!r}')
        for name, value in weights:
            check_real(f'dyt_loss {name}', value, at_least=0)
        self.target_rate = target_rate
        self.rate_weight = rate_weight
        self.complete_weight = complete_weight
        self.distill_weight = distill_weight

    @property
    def needs_complete(self) -> bool:
        return self.complete_weight > 0 or self.distill_weight > 0

    def extra_terms(self, masks: torch.Tensor, dynamic_logits: torch.Tensor,
                    complete_logits: Optional[torch.Tensor] = None,
                    class_dim: int = 1, site_tokens: Optional[torch.Tensor] = None
                    ) -> Dict[str, torch.Tensor]:
        """``loss_rate`` and ``loss_distill`` (each only when its weight is > 0);
        ``site_tokens``: see :func:`mean_keep_rate`."""
        terms = {}
        if self.rate_weight > 0:
            terms['loss_rate'] = self.rate_weight * rate_loss(masks, self.target_rate,
                                                              site_tokens)
        if self.distill_weight > 0:
            terms['loss_distill'] = self.distill_weight * distill_kl(
                dynamic_logits, complete_logits, class_dim)
        return terms

    def __repr__(self) -> str:
        return (f'DyTObjective(target_rate={self.target_rate}, rate_weight={self.rate_weight}, '
                f'complete_weight={self.complete_weight}, distill_weight={self.distill_weight})')
