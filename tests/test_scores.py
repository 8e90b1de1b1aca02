import pytest
import torch
import torch.nn.functional as F

from isample.scores import gnorm_upper_bound, per_example_loss


def autograd_logit_gradient_norms(logits, targets):
    logits = logits.detach().float().requires_grad_(True)
    # Summed per-example losses: row i of the gradient is example i's own gradient.
    F.cross_entropy(logits, targets, reduction="sum").backward()
    return logits.grad.norm(dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gnorm_equals_norm_of_per_example_logit_gradient(dtype):
    generator = torch.Generator().manual_seed(1)
    logits = (3 * torch.randn(64, 10, generator=generator)).to(dtype)
    targets = torch.randint(10, (64,), generator=generator)
    scores = gnorm_upper_bound(logits, targets)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, autograd_logit_gradient_norms(logits, targets), rtol=1e-5, atol=1e-6)


def test_gnorm_bounds():
    logits = torch.tensor([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    scores = gnorm_upper_bound(logits, torch.tensor([0, 0]))
    assert scores[0] < 1e-6  # confident and right
    assert scores[1] == pytest.approx(2**0.5)  # confident and wrong: the largest possible


def test_per_example_loss_matches_cross_entropy():
    logits = torch.randn(16, 5).bfloat16()
    targets = torch.randint(5, (16,))
    losses = per_example_loss(logits, targets)
    assert losses.shape == (16,) and losses.dtype == torch.float32
    torch.testing.assert_close(losses.mean(), F.cross_entropy(logits.float(), targets))
    # Bit for bit F.cross_entropy: the training step's loss did not change.
    logits = torch.randn(64, 10) * 3
    targets = torch.randint(10, (64,))
    assert torch.equal(per_example_loss(logits, targets), F.cross_entropy(logits, targets, reduction="none"))


def test_candidate_loss_is_the_cross_entropy_to_rounding():
    from isample.scores import candidate_loss

    torch.manual_seed(0)
    logits = torch.cat([torch.randn(64, 10) * 3, torch.randn(8, 10) * 300])  # extreme logits too
    targets = torch.randint(10, (72,))
    torch.testing.assert_close(candidate_loss(logits, targets), per_example_loss(logits, targets), rtol=1e-6, atol=1e-5)
    assert candidate_loss(logits.bfloat16(), targets).dtype == torch.float32
