"""Command-line entry points of the DVC stages (see dvc.yaml): read params.yaml, call isample."""
