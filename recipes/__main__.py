"""Run one of the notebook's experiments with the GPU recipe: `dvc exp run` with recipes/gpu.yaml's overrides.

python -m recipes 1                          # exp. 1: IS against uniform, 3 h per run
python -m recipes 1 --seeds 0 1 2 --peers    # three seeds, IS and uniform only (no peer methods)
python -m recipes 3 --print                  # the command, shell-quoted, without running it
python -m recipes 1 -S data.download=true    # more overrides, as dvc exp run takes them
"""

import argparse
import shlex
import subprocess
import sys

import recipes


def command(arguments: argparse.Namespace, recipe: dict) -> list[str]:
    values = recipes.overrides(arguments.experiment, recipe)
    if arguments.seeds is not None:
        values["train.seeds"] = arguments.seeds
    if arguments.peers is not None:
        values["compare.methods"] = arguments.peers
    stages = recipe["experiments"][arguments.experiment].get("stages", [])
    extra = [item for pair in arguments.set or [] for item in ("-S", pair)]
    return ["dvc", "exp", "run", *recipes.set_arguments(values), *extra, *stages]


def main(argv: list[str] | None = None) -> int:
    recipe = recipes.load()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=list(recipe["experiments"]))
    parser.add_argument("--seeds", type=int, nargs="+", help="train.seeds (default: params.yaml's)")
    parser.add_argument("--peers", nargs="*", help="compare.methods, the peers beside IS and uniform (none: only them)")
    parser.add_argument("-S", "--set", action="append", metavar="KEY=VALUE", help="another override")
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")
    arguments = parser.parse_args(argv)
    line = command(arguments, recipe)
    if arguments.print:
        print(shlex.join(line))
        return 0
    print(shlex.join(line), file=sys.stderr)
    return subprocess.run(line).returncode


if __name__ == "__main__":
    sys.exit(main())
