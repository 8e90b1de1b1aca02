"""The CUDA paths: scores, bf16 autocast and channels-last, a sampler and a whole training run on the GPU,
and NCCL collectives with SyncBatchNorm. They run where CUDA is present (benchmarks/gpu_check.py runs
them first) and are skipped elsewhere. ISAMPLE_CUDA_TESTS_DEVICE=cpu runs them on the CPU, with gloo in
place of NCCL and without SyncBatchNorm, to check the tests themselves on a machine without a GPU."""

import os

import pytest
import torch
import torch.distributed as dist

from isample.distributed import current_group
from isample.scores import gnorm_upper_bound as upper_bound_scores
from isample.step import autocast
from tests.common import synthetic_data, tiny_spec, toy_problem

DEVICE = torch.device(os.environ.get("ISAMPLE_CUDA_TESTS_DEVICE", "cuda"))
ON_GPU = DEVICE.type == "cuda"
pytestmark = pytest.mark.skipif(ON_GPU and not torch.cuda.is_available(), reason="needs CUDA")


def test_scores_on_the_device_equal_the_cpu_ones():
    generator = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(512, 10, generator=generator) * 3, torch.randint(10, (512,), generator=generator)
    on_device = upper_bound_scores(logits.to(DEVICE), targets.to(DEVICE)).cpu()
    torch.testing.assert_close(on_device, upper_bound_scores(logits, targets), rtol=1e-5, atol=1e-6)


def test_bf16_channels_last_presample_scores_track_fp32():
    """The GPU recipe's presample forward (ResNet-18, bf16 autocast, channels-last, all B at once)
    scores within bf16's resolution of the fp32 forward of the same weights."""
    from isample.experiment.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", 10).to(DEVICE).eval()
    x, y = torch.randn(64, 3, 32, 32, device=DEVICE), torch.randint(10, (64,), device=DEVICE)
    with torch.no_grad():
        reference = upper_bound_scores(model(x).float(), y)
        model = model.to(memory_format=torch.channels_last)
        with autocast(DEVICE, torch.bfloat16):
            logits = model(x.to(memory_format=torch.channels_last))
        scores = upper_bound_scores(logits.float(), y)
    assert logits.dtype == torch.bfloat16
    assert (scores - reference).abs().max() < 0.05, (scores - reference).abs().max()


def test_importance_sampling_trains_on_the_device_in_bf16():
    from isample.trainer import ImportanceSampler

    model, _, x, y = toy_problem(n=2000)
    model = model.to(DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sampler = ImportanceSampler(
        model,
        optimizer,
        x.to(DEVICE),
        y.to(DEVICE),
        64,
        presample=4,
        forward_chunk=0,
        always_importance=True,
        autocast_dtype=torch.bfloat16,
        generator=torch.Generator().manual_seed(0),
    )
    losses = [sampler.step().weighted_loss.item() for _ in range(150)]
    it = sampler.step()
    # drawn on the device, the batch's data-set indices stay there (read back, they would wait for it)
    assert it.indices.device.type == DEVICE.type and it.weights.isfinite().all() and it.used_importance
    assert it.phases["presample_forward"] > 0
    assert sum(losses[-20:]) < 0.5 * sum(losses[:20]), (losses[:3], losses[-3:])


@pytest.mark.skipif(not ON_GPU, reason="the sync debug mode is CUDA's")
@pytest.mark.parametrize("draw", ["with_replacement", "without_replacement"])
def test_an_importance_sampled_iteration_waits_for_nothing_on_the_gpu(draw):
    """CUDA's own sync debug mode (tests/test_phases.py counts the same reads on the CPU): no call in the
    sampler, its rule or its reads waits for the device in an IS iteration. Gathering a batch copies its
    indices from the host (isample/examples.py), as every method's does; that is not counted here."""
    import warnings

    from isample.methods.catalog import UpperBoundOptions
    from isample.trainer import Trainer

    model, optimizer, x, y = toy_problem(n=2000)
    model = model.to(DEVICE)
    options = UpperBoundOptions(always_importance=True, presample=3, draw=draw)
    trainer = Trainer("upper_bound", model, optimizer, x.to(DEVICE), y.to(DEVICE), 64, options=options, seed=0)
    for _ in range(5):
        trainer.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(10):
                trainer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ours = [w for w in caught if "/isample/" in w.filename and "/isample/examples.py" not in w.filename]
    assert ours == [], [(w.filename, w.lineno, str(w.message)[:80]) for w in ours]


def test_a_training_run_with_the_gpu_recipe_completes():
    """resnet8 on tiny data with bf16 autocast, channels-last and forward_chunk 0, through the pipeline's
    training run: a completed record with finite accuracies, trained on the device."""
    from isample.experiment.train import train_run

    gpu = {"amp": True, "channels_last": True} if ON_GPU else {}
    spec = tiny_spec("upper_bound", sampler={"forward_chunk": 0, "tau_th": 0.5}, device=DEVICE.type, **gpu)
    run = train_run(spec, synthetic_data(), progress=False)
    assert run.status == "completed" and run.params["device"].startswith(DEVICE.type)
    assert run.epochs["test_accuracy"].notna().all() and 0 <= run.final_accuracy <= 1
    assert run.scored_share > 0  # IS ran (tau_th 0.5 is always passed)


def test_nccl_collectives_and_sync_batchnorm_in_a_group_of_one(tmp_path):
    backend = "nccl" if ON_GPU else "gloo"
    dist.init_process_group(backend, init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        group = current_group()
        assert group.device.type == DEVICE.type
        assert group.mean([1.0, 3.0]) == [1.0, 3.0] and group.from_main([2.0]) == [2.0]
        assert torch.equal(group.gather(torch.arange(4)), torch.arange(4))
        assert group.gather_objects({"a": 1}) == [{"a": 1}] and group.object_from("x") == "x"
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten())
        if ON_GPU:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(DEVICE)
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[DEVICE.index or 0] if ON_GPU else None)
        before = model[0].weight.detach().clone()
        ddp(torch.randn(16, 3, 8, 8, device=DEVICE)).square().mean().backward()
        torch.optim.SGD(ddp.parameters(), lr=0.1).step()
        assert not torch.equal(model[0].weight, before) and model[1].num_batches_tracked.item() == 1
    finally:
        dist.destroy_process_group()
