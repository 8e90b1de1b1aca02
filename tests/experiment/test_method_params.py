"""The selection methods' options read from params.yaml (isample/experiment/method_params.py)."""

from isample.experiment.config import validate
from isample.methods import UpperBoundOptions
from tests.common import raw_params


def test_upper_bound_options_come_from_presample_and_sampler():
    from isample.experiment.method_params import method_options

    params = validate(raw_params({"presample": 5, "sampler": {"score_mode": "eval", "smoothing": 0.2}}))
    options = method_options(params, "upper_bound")
    sampler = params.sampler
    assert options == UpperBoundOptions(
        presample=5.0,
        tau_threshold=sampler["tau_th"],
        score="gnorm",
        score_mode="eval",
        smoothing=0.2,
        forward_chunk=sampler["forward_chunk"],
        tau_momentum=sampler["tau_momentum"],
        presample_bf16=sampler["presample_bf16"],
    )


def test_the_library_defaults_are_params_yaml_values():
    """One set of defaults: every method's Options defaults equal what params.yaml holds for them."""
    from isample.experiment.method_params import method_options
    from isample.methods.catalog import CATALOG

    params = validate(raw_params())
    for name, entry in CATALOG.items():
        assert method_options(params, name) == entry.options(), name
