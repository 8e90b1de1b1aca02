"""isample.selector: every method of the family as the batch sampler of the user's own DataLoader."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from isample.examples import stop_workers
from isample.methods import METHODS, ReuseOptions
from isample.selector import BatchSelector
from tests.common import toy_problem, toy_tables


def indexed(n=600, seed=0):
    """A dataset whose inputs carry their own index (column 0), so a test sees which examples came."""
    model, _, x, y = toy_problem(seed, n)
    return model, TensorDataset(torch.cat([torch.arange(n).unsqueeze(1).float(), x], 1), y)


def test_a_uniform_epoch_trains_every_example_once_with_weights_one():
    _, dataset = indexed(600)
    selector = BatchSelector("uniform", 600, 30, seed=1)
    loader = DataLoader(dataset, batch_sampler=selector, num_workers=2)
    for _ in range(2):
        seen = []
        for x, _ in loader:
            indices = x[:, 0].long()
            assert torch.equal(selector.weights(indices), torch.ones(30))
            seen.append(indices)
            selector.observe(torch.rand(30), torch.randn(30, 5), torch.randint(5, (30,)))
        assert sorted(torch.cat(seen).tolist()) == list(range(600)) and len(seen) == len(selector) == 20


def test_reuse_through_a_prefetching_loader_is_unbiased():
    """Monte Carlo: with workers asking for batches ahead, mean(w * f) over the delivered batches is
    the whole data set's mean of f, while the unweighted mean is not (f follows the scores)."""
    n = 400
    _, dataset = indexed(n)
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(n, generator=generator) ** 3
    f = torch.randn(n, generator=generator) + 5 * scores
    selector = BatchSelector("reuse", n, 50, options=ReuseOptions(smoothing=0.1), seed=2)
    selector.method.load_state_dict(
        {"tau": 0.0, "scores": scores, "scored_at": torch.zeros(n, dtype=torch.int64), "iterations": 0}
    )
    loader = DataLoader(dataset, batch_sampler=selector, num_workers=2, prefetch_factor=4, persistent_workers=True)
    weighted, plain = [], []
    for _ in range(150):  # 1,200 batches of 50
        for x, _ in loader:
            indices = x[:, 0].long()
            weights = selector.weights(indices)
            weighted.append((weights * f[indices]).mean())
            plain.append(f[indices].mean())  # (no observe: the table, and so q, stay as set above)
    weighted, plain = torch.stack(weighted), torch.stack(plain)
    error = weighted.std() / len(weighted) ** 0.5
    stop_workers(loader)
    assert abs(weighted.mean() - f.mean()) < 4 * error
    assert abs(plain.mean() - f.mean()) > 20 * error


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_a_model_in_a_plain_loop(method):
    _, dataset = indexed(800)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 5))
    features = TensorDataset(dataset.tensors[0][:, 1:], dataset.tensors[1])  # what the methods' forwards take
    optimizer = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9)
    selector = BatchSelector(method, 800, 32, model=net, dataset=features, seed=3, tables=toy_tables(method, 800))
    loader = DataLoader(dataset, batch_sampler=selector, num_workers=2, persistent_workers=True)
    everything = features.tensors

    def full_data_loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(net(everything[0]), everything[1]).item()

    before, batches = full_data_loss(), 0
    while batches < 150:  # six epochs of 25 batches, or as many trained batches where epochs are shorter
        for x, y in loader:
            batches += 1
            logits = net(x[:, 1:])
            losses = F.cross_entropy(logits, y, reduction="none")
            (selector.weights(x[:, 0].long()) * losses).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
            selector.observe(losses.detach(), logits.detach(), y)
    stop_workers(loader)
    selector.close()
    assert full_data_loss() < 0.5 * before, (before, full_data_loss())


def test_misuse_is_one_clear_error():
    model, dataset = indexed(100)
    with pytest.raises(ValueError, match="upper_bound runs forwards of its own: give it model= and dataset="):
        BatchSelector("upper_bound", 100, 10)
    with pytest.raises(ValueError, match="batch_size must be between 1 and the dataset's 100 examples"):
        BatchSelector("uniform", 100, 200)
    selector = BatchSelector("uniform", 100, 10)
    with pytest.raises(RuntimeError, match="no batch is waiting"):
        selector.weights()
    with pytest.raises(RuntimeError, match="observe follows weights"):
        selector.observe(torch.rand(10), torch.randn(10, 5), torch.randint(5, (10,)))
    batches = iter(selector)
    next(batches), next(batches)
    with pytest.raises(RuntimeError, match="another order"):
        selector.weights(torch.arange(10) + 1000)
