"""Per-example importance scores computed from a network's logits."""

import torch
import torch.nn.functional as F

from isample.names import SCORES


def gnorm_upper_bound(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """||softmax(z) - onehot(y)||_2 per example: the norm of d(cross-entropy)/d(logits).

    Katharopoulos & Fleuret (2018) show it bounds the full per-example gradient norm up to a
    constant. Computed in float32 so bfloat16/float16 logits give the same scores.
    """
    probabilities = torch.softmax(logits.float(), dim=1)
    residual = probabilities - F.one_hot(targets, num_classes=logits.shape[1]).to(probabilities.dtype)
    return torch.linalg.vector_norm(residual, dim=1)


def per_example_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each example, in float32 (the training step's and evaluation's loss)."""
    return F.cross_entropy(logits.float(), targets, reduction="none")


def candidate_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same cross-entropy, as log(sum exp z) - z_y: equal to per_example_loss up to float rounding
    (tests/test_scores.py), at half its cost on small CPU batches. For ranking candidates among losses
    computed alike (Selective-Backprop); training keeps F.cross_entropy, bit for bit."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=1) - logits.gather(1, targets.unsqueeze(1)).squeeze(1)


SCORE_FUNCTIONS = dict(zip(SCORES, (gnorm_upper_bound, per_example_loss)))  # in the order of SCORES
