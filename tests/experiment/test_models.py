import pytest
import torch

from isample.experiment.models import MODELS, build_model


@pytest.mark.parametrize(
    "name, millions",
    [("resnet8", 0.078), ("resnet20", 0.27), ("resnet32", 0.46), ("resnet56", 0.85), ("resnet18", 11.2)],
)
def test_models_have_published_sizes_and_cifar_shapes(name, millions):
    model = build_model(name, num_classes=10)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    assert parameters == pytest.approx(millions, rel=0.05)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_number_of_classes_sets_the_head():
    model = build_model("resnet8", num_classes=100)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="known: " + ", ".join(MODELS)):
        build_model("vgg16", 10)


def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    first = build_model("resnet8", 10).state_dict()
    torch.manual_seed(3)
    second = build_model("resnet8", 10).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
