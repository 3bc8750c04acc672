"""Knowledge distillation (Hinton et al., 2015; HashedNets trains with this "dark knowledge").

The dense model is the teacher; the compressed student learns from its softened outputs and the
labels: loss = α·T²·KL(p_t ‖ p_s) + (1 − α)·CE(z_s, y), with p = softmax(z / T). KL is taken with
the teacher's distribution as the target (``F.kl_div(log p_s, p_t)``, the usual direction: it has
the gradient of soft-target cross-entropy), averaged over the batch; T² keeps the soft term's
gradient scale independent of T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y), batch mean."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t = float(temperature)
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits.detach() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * t * t * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


class Distiller:
    """``loss = distiller(student_logits, inputs, targets)`` for a training loop of your own.

    Runs the teacher in eval mode without gradients on ``inputs`` and returns the distillation loss.
    """

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9) -> None:
        self.teacher = teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.temperature, self.alpha = temperature, alpha

    def __call__(
        self, student_logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        return distillation_loss(student_logits, teacher_logits, targets, self.temperature, self.alpha)
