"""The core is a light library: importing it and its selection methods loads torch and nothing of the pipeline
(the report, the other way round, loads no torch: tests/report)."""

import subprocess
import sys

# tqdm is not listed: torch itself imports it when it is installed.
PIPELINE_MODULES = (
    "pandas",
    "dvc",
    "dvclive",
    "matplotlib",
    "seaborn",
    "scipy",
    "pydantic",
    "yaml",
    "torchvision",
    "openpyxl",
)


def loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_checking_options_loads_no_method_and_no_torch():
    """The catalog (options, rules, defaults) is plain Python: validating params.yaml loads no method."""
    from isample.methods.catalog import CATALOG

    method_modules = {entry.implementation.split(":")[0] for entry in CATALOG.values()}
    assert len(method_modules) == len(CATALOG)  # every method's own module, so a test can fail for each
    modules = loaded_after("from isample.methods.catalog import CATALOG\nimport isample.methods")
    assert "torch" not in modules and not modules & method_modules, sorted(modules & method_modules)
    everyone = loaded_after("from isample.methods import METHODS\n" + "\n".join(f"METHODS[{n!r}]" for n in CATALOG))
    assert method_modules <= everyone  # each loads when first used


def test_the_core_loads_no_pipeline_package():
    modules = loaded_after(
        "import isample\nfrom isample import ImportanceSampler, UniformSampler, Trainer, METHODS\n"
        "import isample.methods, isample.sampler, isample.step, isample.costmodel"
    )
    assert "torch" in modules and "isample.methods.upper_bound" not in modules  # a method loads when first used
    assert not modules & set(PIPELINE_MODULES), sorted(modules & set(PIPELINE_MODULES))
    assert not any(name.startswith(("isample.experiment", "isample.report")) for name in modules)
