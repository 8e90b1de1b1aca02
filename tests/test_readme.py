import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_trains(capsys):
    text = README.read_text()
    block = re.search(r"<!-- example: start -->\s*```python\n(.*?)```\s*<!-- example: end -->", text, re.S)
    assert block, "README lost its sampler example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 16
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["accuracy"] > 0.85
    printed = re.findall(r"IS (True|False), speed-up ([\d.]+|nan) / ([\d.]+)", capsys.readouterr().out)
    assert len(printed) == 6
    # Where the measured price 1 + a is below the predicted speed-up IS switches on; where it is above
    # (a loaded machine, or a draw whose speed-up cannot reach it), the rule must have kept IS off.
    switched_on = any(used == "True" for used, _, _ in printed)
    assert switched_on or all(float(speedup) < float(threshold) for _, speedup, threshold in printed[1:]), printed


def test_the_own_loop_example_trains_a_torchvision_model_on_an_image_folder(tmp_path, monkeypatch, capsys):
    """The README's DataLoader example, run as written on a small ImageFolder of four learnable classes.
    It needs torchvision (the pipeline's packages): `make test` runs it; the core's own venv (`make
    test-core`, torch and pytest alone) cannot."""
    pytest.importorskip("torchvision")
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    for label, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]):
        folder = tmp_path / "images" / "train" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(40):
            pixels = np.clip(np.array(colour) + generator.normal(0, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    text = README.read_text()
    block = re.search(r"<!-- loop example: start -->\s*```python\n(.*?)```\s*<!-- loop example: end -->", text, re.S)
    assert block, "README lost its own-loop example"
    code = block.group(1)
    loop_lines = code[code.index("augment = ") :].strip().splitlines()
    assert len(loop_lines) <= 20, len(loop_lines)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_loop_example"}
    exec(compile(code, str(README), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == [f"epoch {e}" for e in range(4)]
    selector, dataset = namespace["selector"], namespace["dataset"]
    assert (selector.method.scored_at >= 0).sum() > 0.8 * len(dataset)  # the table filled from the forwards
    # Batch statistics: MobileNetV3's BatchNorm keeps running ones with momentum 0.01, far from settled
    # after the 20 steps here, so eval mode would not show what it learnt.
    model = namespace["model"].train()
    with torch.no_grad():
        x, y = zip(*(dataset[i] for i in range(0, len(dataset), 4)))
        accuracy = (model(torch.stack(x)).argmax(1) == torch.tensor(y)).float().mean().item()
    assert accuracy > 0.5, accuracy  # four classes: chance is 0.25
