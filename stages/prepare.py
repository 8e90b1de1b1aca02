"""prepare: CIFAR decoded once into compact tensors under data/prepared/; an ImageFolder data set
(`data.name: imagefolder`) indexed and checked there, its images left on disk (an archive unpacked
under data/prepared/ once)."""

from isample.experiment.config import Params
from isample.experiment.data import IMAGEFOLDER, load_dataset, subset
from isample.experiment.prepared import save_prepared
from stages.common import PREPARED_DIR, prepared_path, run_stage


def main(params: Params) -> None:
    settings = params.data
    if settings.name == IMAGEFOLDER:
        from isample.experiment.streamed import prepare_image_folder

        data = prepare_image_folder(
            settings.path,
            settings.image_size,
            settings.train_subset,
            settings.test_subset,
            PREPARED_DIR / "imagefolder",
        )
    else:
        data = subset(
            load_dataset(settings.name, settings.root, settings.download), settings.train_subset, settings.test_subset
        )
    path = prepared_path(params)
    save_prepared(data, path)
    print(
        f"prepared {settings.name} from {data.source}: {data.train_size} train, {data.test_size} test "
        f"images, {len(data.classes)} classes -> {path} (sha256 {data.content_hash[:12]})"
    )


if __name__ == "__main__":
    run_stage(main)
