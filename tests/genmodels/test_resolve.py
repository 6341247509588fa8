"""Nothing a file names is imported: every class name is resolved against the allowlist as text.

Each hole of issue #27 is reproduced with a module ``evilmod`` (or ``datamodules_evil``) on
``sys.path`` whose import would create a marker file: the marker must never appear, and the
command refuses with one line. These tests fail on the code before `genmodels.resolve` (the
marker appeared in each of them) and pass after.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genmodels.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A directory on sys.path with evilmod.py, which creates ``marker`` when imported."""
    marker = tmp_path / "marker"
    code = f"open({str(marker)!r}, 'w').write('imported')\nclass Data:\n    pass\n"
    (tmp_path / "evilmod.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("evilmod", None)
    yield marker
    sys.modules.pop("evilmod", None)


def _subset_section(class_path: str = "datamodules.subset.ClassSubsetDataModule", dataset: str = "evilmod.Data") -> dict:
    return {"class_path": class_path, "init_args": {"dataset": dataset, "classes": [0, 1]}}


def test_run_config_yaml_naming_a_file_module_through_the_subset_is_not_imported(evil, tmp_path):
    """evaluate reads a run's config.yaml by default (`load_datamodule`)."""
    from genmodels.metrics.commands import load_datamodule

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": _subset_section()}))
    with pytest.raises(UserError, match="evilmod.Data"):
        load_datamodule(config)
    assert not evil.exists()


@pytest.mark.parametrize("spec", [
    _subset_section(),                                   # the long spelling anomaly did not compare
    _subset_section("datamodules.ClassSubsetDataModule"),
    {"class_path": "evilmod.Data", "init_args": {}},      # the recorded datamodule itself
    {"class_path": "datamodules.evilmod.Data", "init_args": {}},
])
def test_a_checkpoints_recorded_datamodule_is_never_imported(evil, spec):
    """anomaly rebuilds the datamodule the checkpoint records (`datamodule_hyper_parameters`)."""
    from genmodels.apps.anomaly import build_datamodule, datamodule_spec

    recorded = {"datamodule_hyper_parameters": {"_class_path": spec["class_path"], **spec["init_args"]}}
    with pytest.raises(UserError):
        build_datamodule(datamodule_spec(recorded, None))
    assert not evil.exists()


def test_the_subset_datamodule_itself_refuses_a_file_module(evil):
    from datamodules import ClassSubsetDataModule

    with pytest.raises(ValueError, match="evilmod"):
        ClassSubsetDataModule(dataset="evilmod.Data")
    assert not evil.exists()


def test_check_data_run_as_a_module_beside_a_downloaded_file_imports_nothing(tmp_path):
    """``python -m genmodels`` puts the working directory on sys.path: a file there must not run."""
    marker = tmp_path / "marker"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass Data:\n    pass\n")
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"data": _subset_section()}))
    override = ["--data.init_args.dataset", "evilmod.Data"]
    for extra in ([], override):
        result = subprocess.run([sys.executable, "-m", "genmodels", "check-data", "--config", "x.yaml", *extra],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        assert not marker.exists(), result.stderr
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0 and "genmodels: error:" in result.stderr


def test_augment_data_name_is_looked_up_in_the_allowlist(evil):
    from genmodels.apps.augment import resolve_datamodule

    with pytest.raises(UserError):
        resolve_datamodule("evilmod.Data", image_size=8)
    assert not evil.exists()


def test_a_checkpoints_model_class_outside_the_allowlist_is_never_imported(evil):
    from genmodels.checkpoints import CheckpointError, model_class_of

    for name in ("evilmod.Data", "genmodels.evilmod.Data"):
        with pytest.raises(CheckpointError):
            model_class_of({"genmodels": {"model_class": name}})
    assert not evil.exists()


# -- the resolver itself ----------------------------------------------------------------------


def test_every_spelling_of_an_allowed_class_maps_to_the_canonical_one():
    from genmodels.resolve import resolve_datamodule, resolve_model

    for spelling in ("ClassSubsetDataModule", "datamodules.ClassSubsetDataModule",
                     "datamodules.subset.ClassSubsetDataModule", " datamodules.ClassSubsetDataModule "):
        assert resolve_datamodule(spelling) == "datamodules.ClassSubsetDataModule"
    assert resolve_datamodule("digits") == resolve_datamodule("DigitsDataModule") == "datamodules.DigitsDataModule"
    assert resolve_model("genmodels.gans.dcgan.DCGAN") == resolve_model("genmodels.DCGAN") == "genmodels.DCGAN"


@pytest.mark.parametrize("name", ["os.system", "datamodules.base.ImageDataModule", "datamodules.subset.importlib",
                                  "genmodels.DCGAN", "datamodules.digits.MNISTDataModule", 3, None, ["x"]])
def test_anything_else_is_refused_with_one_line(name):
    from genmodels.resolve import ResolveError, resolve_datamodule

    with pytest.raises(ResolveError) as info:
        resolve_datamodule(name, "x.yaml data.class_path")
    assert "\n" not in str(info.value) and "x.yaml data.class_path" in str(info.value)


def test_the_tables_match_the_packages_public_classes():
    """The text tables name exactly the exported datamodules and models, each in its defining module."""
    import datamodules
    import genmodels
    from datamodules.base import ImageDataModule
    from genmodels.base import GenerativeModel
    from genmodels.gans.adversarial import AdversarialModel
    from genmodels.resolve import DATAMODULES, MODELS, import_class

    exported = {f"datamodules.{n}" for n in datamodules.__all__
                if isinstance(getattr(datamodules, n), type) and issubclass(getattr(datamodules, n), ImageDataModule)
                and getattr(datamodules, n) is not ImageDataModule}
    assert set(DATAMODULES) == exported
    from pytorch_lightning import LightningModule

    models = {f"genmodels.{n}" for n in genmodels.__all__  # DAMSM is trained by fit too
              if isinstance(getattr(genmodels, n), type) and issubclass(getattr(genmodels, n), LightningModule)
              and getattr(genmodels, n) not in (GenerativeModel, AdversarialModel)}
    assert set(MODELS) == models
    for table in (DATAMODULES, MODELS):
        for canonical, module in table.items():
            assert import_class(canonical).__module__ == module


def test_build_datamodule_builds_the_configured_datamodule(tmp_path):
    from genmodels.resolve import build_datamodule

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.subset.ClassSubsetDataModule",
                                               "init_args": {"dataset": "digits", "classes": [1, 2], "image_size": 8}}}))
    dm = build_datamodule(config, ["--data.init_args.batch_size", "3"])
    assert type(dm).__name__ == "ClassSubsetDataModule" and dm.classes == [1, 2] and dm.batch_size == 3
    assert type(dm.dataset).__name__ == "DigitsDataModule"
    with pytest.raises(UserError, match="os.system"):
        build_datamodule(config, ["--data.class_path", "os.system"])
