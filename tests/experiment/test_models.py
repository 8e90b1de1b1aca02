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
    with pytest.raises(ValueError, match="not a model here: " + ", ".join(MODELS) + r", or torchvision:<name>"):
        build_model("vgg16", 10)
    with pytest.raises(
        ValueError, match=r"'torchvision:resnet_nope' is not a torchvision classification model; .*list_models"
    ):
        build_model("torchvision:resnet_nope", 10)
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        build_model("torchvision:fasterrcnn_resnet50_fpn", 10)  # detection, not classification


@pytest.mark.parametrize("size", [32, 64])
def test_any_torchvision_classifier_builds_randomly_initialised_with_our_classes(size):
    torch.manual_seed(0)
    model = build_model("torchvision:mobilenet_v3_small", num_classes=7)
    torch.manual_seed(0)
    again = build_model("torchvision:mobilenet_v3_small", num_classes=7)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.train()
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    googlenet = build_model("torchvision:googlenet", num_classes=5).train()
    assert googlenet(torch.randn(2, 3, 64, 64)).shape == (2, 5)  # no auxiliary outputs in training


def test_a_model_that_cannot_take_the_images_is_one_line_before_training():
    from isample.experiment.config import ConfigError
    from isample.experiment.setup import check_model_fits

    check_model_fits(build_model("torchvision:mobilenet_v3_small", 10), "torchvision:mobilenet_v3_small", (3, 32, 32))
    vit = build_model("torchvision:vit_b_16", 10)
    with pytest.raises(
        ConfigError, match=r"^params.yaml: model.name = 'torchvision:vit_b_16' cannot classify 3x32x32 images: "
    ):
        check_model_fits(vit, "torchvision:vit_b_16", (3, 32, 32))


def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    first = build_model("resnet8", 10).state_dict()
    torch.manual_seed(3)
    second = build_model("resnet8", 10).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
