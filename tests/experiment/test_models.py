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
    with pytest.raises(
        ValueError,
        match="not a model here: "
        + ", ".join(MODELS)
        + r", wrn<depth>_<k> \(wrn28_2, wrn28_10\), or torchvision:<name>",
    ):
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


@pytest.mark.parametrize("name, millions", [("wrn28_2", 1.47), ("wrn28_10", 36.5)])
def test_wide_resnets_have_the_papers_sizes_and_shapes(name, millions):
    """Zagoruyko & Komodakis (2016), table 1: WRN-28-10 36.5 M parameters; WRN-28-2 about 1.5 M."""
    model = build_model(name, num_classes=10)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, rel=0.01)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convolutions) == 25  # the stem and 2 x 12 blocks: 28 layers with the 2 shortcut 1x1s and the head
    width = int(name.split("_")[1])
    features = model.features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 64 * width, 8, 8)  # two halvings of 32 x 32, 64k channels
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_layer_norm_scores_alike_in_training_and_eval_mode():
    """The 2018 code's normalisation: per example, so training-mode and eval-mode scores are equal,
    whatever the batch (BatchNorm's differ)."""
    from isample.scores import gnorm_upper_bound

    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    for norm, alike in (("layer", True), ("group", True), ("batch", False)):
        torch.manual_seed(0)
        model = build_model("wrn10_1", num_classes=10, norm=norm)
        with torch.no_grad():
            training = gnorm_upper_bound(model.train()(x), y)
            half = gnorm_upper_bound(model.train()(x[:8]), y[:8])
            evaluation = gnorm_upper_bound(model.eval()(x), y)
        assert torch.allclose(training, evaluation, atol=1e-5) == alike, norm
        assert torch.allclose(training[:8], half, atol=1e-5) == alike, norm


def test_bad_wide_resnets_and_normalisations_are_one_line():
    for name in ("wrn27_2", "wrn4_2", "wrn28_0"):
        with pytest.raises(ValueError, match=rf"^'{name}': a Wide ResNet wrn<depth>_<k> needs depth = 6n \+ 4"):
            build_model(name, 10)
    with pytest.raises(ValueError, match=r"^unknown normalisation 'instance': batch, layer, group$"):
        build_model("wrn28_2", 10, norm="instance")
    with pytest.raises(ValueError, match=r"^model.norm = 'layer': torchvision models keep their own normalisation"):
        build_model("torchvision:resnet18", 10, norm="layer")
