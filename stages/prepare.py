"""prepare: decode the data set once into compact tensors under data/prepared/."""

from isample.experiment.config import Params
from isample.experiment.data import load_dataset, save_prepared, subset
from stages.common import prepared_path, run_stage


def main(params: Params) -> None:
    data = load_dataset(params.data.name, params.data.root, params.data.download)
    data = subset(data, params.data.train_subset, params.data.test_subset)
    path = prepared_path(params)
    save_prepared(data, path)
    print(
        f"prepared {params.data.name} from {data.source}: {len(data.train_x)} train, {len(data.test_x)} test "
        f"images, {len(data.classes)} classes -> {path} (sha256 {data.content_hash[:12]})"
    )


if __name__ == "__main__":
    run_stage(main)
