"""GenerativeMetrics: cadence by iteration, logging for ModelCheckpoint, cached reference, no RNG
side effects, and real 2-process DDP equal to a single process on the same samples."""

import json

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

import genmodels.callbacks.metrics as callback_module
from datamodules import DigitsDataModule
from genmodels import GAN
from genmodels.callbacks import GenerativeMetrics, StopAtIteration
from genmodels.metrics import GenerativeEvaluator, StatisticsCache
from genmodels.metrics.classifier import load_classifier, save_classifier
from genmodels.metrics.evaluator import sample_shares
from genmodels.metrics.reference import ReferenceImages, compute_reference, reference_key
from tests.genmodels.metrics.fixtures import (  # noqa: F401  (fixtures used here)
    isolated_weights_and_cache,
    lenet_file,
    make_classifier,
)

NUM_REAL = 200


def _gan():
    return GAN(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(32,), discriminator_hidden=(16,))


def _digits(image_size=16):
    return DigitsDataModule(image_size=image_size, batch_size=32)


def _callback(lenet, cache, **kwargs):
    options = dict(every_n_iterations=2, num_samples=64, metrics="fid,is", extractor=f"classifier:{lenet}",
                   num_real=NUM_REAL, batch_size=32, cache_dir=str(cache))
    return GenerativeMetrics(**{**options, **kwargs})


def _count_reference_computations(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return compute_reference(*args, **kwargs)

    monkeypatch.setattr(callback_module, "compute_reference", counting)
    return calls


def _fit(tmp_path, callbacks, iterations=5, model=None, datamodule=None, logger=False):
    pl.seed_everything(0)
    model = model or _gan()
    trainer = pl.Trainer(
        accelerator="cpu", logger=logger, enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, max_epochs=-1,
        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[*callbacks, StopAtIteration(iterations)],
    )
    trainer.fit(model, datamodule=datamodule or _digits())
    return trainer, model


def test_periodic_and_final_evaluations_are_logged_and_monitorable(tmp_path, lenet_file, monkeypatch):
    calls = _count_reference_computations(monkeypatch)
    metrics = _callback(lenet_file, tmp_path / "cache")
    best = ModelCheckpoint(dirpath=tmp_path / "best", monitor="val/fid_lenet", mode="min", save_top_k=1,
                           filename="best-fid", auto_insert_metric_name=False, every_n_train_steps=1)
    logger = CSVLogger(tmp_path, name="csv")
    trainer, model = _fit(tmp_path, [metrics, best], iterations=5, logger=logger)

    # Every 2 iterations (global_step is twice that for a GAN) and at the end of training.
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 5] and trainer.global_step == 10
    fids = {r["iteration"]: r["values"]["val/fid_lenet"] for r in records}
    assert set(records[-1]["values"]) == {"val/fid_lenet", "val/is_lenet", "val/is_lenet_std"}
    assert 1 <= records[-1]["values"]["val/is_lenet"] <= 10
    assert metrics.last_results == records[-1]["values"]
    assert trainer.callback_metrics["val/fid_lenet"].item() == pytest.approx(fids[5])

    # The real statistics were computed once for the three evaluations (and written to the cache).
    assert len(calls) == 1
    assert [r["protocol"]["reference"]["source"] for r in records] == ["computed", "memory", "memory"]
    assert len(list((tmp_path / "cache").glob("digits-train-16px-lenet-*-n200-*.pt"))) == 1

    # The protocol: extractor and its hash, samples, reference split and size, resolution.
    protocol = metrics.last_protocol
    assert protocol["extractor"] == "lenet" and protocol["extractor_sha256"] == load_classifier(lenet_file).sha256
    assert protocol["num_samples"] == 64 and protocol["image_shape"] == [1, 16, 16]
    assert protocol["reference"]["split"] == "train" and protocol["reference"]["num_images"] == NUM_REAL
    assert protocol["iteration"] == 5 and records[0]["protocol"]["iteration"] == 2
    hparams = (tmp_path / "csv/version_0/hparams.yaml").read_text()  # the model's tuples need an unsafe loader
    assert "generative_metrics:" in hparams and f"extractor_sha256: {protocol['extractor_sha256']}" in hparams
    rows = (tmp_path / "csv/version_0/metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    logged = [dict(zip(header, r.split(","))) for r in rows[1:]]
    logged = [r for r in logged if r.get("val/fid_lenet")]
    assert [float(r["iteration"]) for r in logged] == [2, 4, 5]
    assert [float(r["val/fid_lenet"]) for r in logged] == pytest.approx([fids[2], fids[4], fids[5]])

    # ModelCheckpoint(monitor="val/fid_lenet") kept the checkpoint of the lowest FID.
    assert best.best_model_score.item() == pytest.approx(min(fids.values()))
    saved = torch.load(best.best_model_path, weights_only=True)
    assert saved["genmodels"]["iteration"] == min(fids, key=fids.get)


def test_a_run_with_metrics_trains_exactly_like_one_without(tmp_path, lenet_file):
    metrics = _callback(lenet_file, tmp_path / "cache", metrics="fid,kid,pr,is", kid_subset_size=50)
    _, with_metrics = _fit(tmp_path / "a", [metrics], iterations=4)
    _, without = _fit(tmp_path / "b", [], iterations=4)
    for (name, a), b in zip(with_metrics.state_dict().items(), without.state_dict().values()):
        assert torch.equal(a, b), name  # sampling for metrics used its own generator, in eval mode
    assert with_metrics.training  # train mode restored


def test_cache_is_reused_across_runs_and_invalidated_by_extractor_or_resolution(tmp_path, lenet_file, monkeypatch):
    calls = _count_reference_computations(monkeypatch)
    cache = tmp_path / "cache"
    first = _callback(lenet_file, cache, every_n_iterations=0)
    _fit(tmp_path / "1", [first], iterations=1)
    second = _callback(lenet_file, cache, every_n_iterations=0)
    _fit(tmp_path / "2", [second], iterations=1)
    assert len(calls) == 1 and second.reference_source == "cache"
    assert second.last_results == first.last_results  # same weights (seeded), same reference

    other = tmp_path / "other-lenet.pt"
    save_classifier(make_classifier(seed=3), other)
    _fit(tmp_path / "3", [_callback(other, cache, every_n_iterations=0)], iterations=1)
    small = GAN(image_shape=(1, 8, 8), latent_dim=8, generator_hidden=(32,), discriminator_hidden=(16,))
    _fit(tmp_path / "4", [_callback(lenet_file, cache, every_n_iterations=0)], 1, model=small, datamodule=_digits(8))
    assert len(calls) == 3  # another classifier hash, another resolution: recomputed
    names = sorted(p.name for p in cache.glob("*.pt"))
    assert len(names) == 3 and sum("-8px-" in n for n in names) == 1


def test_missing_inception_weights_fail_before_training(tmp_path):
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         max_epochs=1, callbacks=[GenerativeMetrics(extractor="inception")])
    model = _gan()
    with pytest.raises(FileNotFoundError, match="weights-inception-2015-12-05-6726825d.pth"):
        trainer.fit(model, datamodule=_digits())
    assert model.iteration == 0


# ---------------------------------------------------------------------------------------------
# Real DDP: two processes on CPU (gloo)


class RecordingMetrics(GenerativeMetrics):
    """Also writes every rank's values (only rank 0 writes metrics.jsonl)."""

    def on_train_end(self, trainer, pl_module):
        super().on_train_end(trainer, pl_module)
        path = f"{trainer.default_root_dir}/rank{trainer.global_rank}.json"
        with open(path, "w") as handle:
            record = {"values": self.last_results, "world_size": trainer.world_size, "iteration": pl_module.iteration}
            json.dump(record, handle)


@pytest.mark.ddp
def test_two_process_ddp_equals_a_single_process_on_the_same_samples(tmp_path, lenet_file):
    cache = tmp_path / "cache"
    options = dict(every_n_iterations=0, num_samples=90, metrics="fid,is,kid,pr", extractor=f"classifier:{lenet_file}",
                   num_real=NUM_REAL, batch_size=16, cache_dir=str(cache), kid_subsets=10, kid_subset_size=40, seed=5)
    pl.seed_everything(0)
    model = _gan()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn_find_unused_parameters_true", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=-1,
        num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path,
        callbacks=[RecordingMetrics(**options), StopAtIteration(2)],
    )
    trainer.fit(model, datamodule=_digits())  # the final weights come back from rank 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["iteration"] == ranks[1]["iteration"] == 2
    assert ranks[0]["values"] == ranks[1]["values"]  # every rank computed the reduced value

    # Single process, same samples: rank r's share from the generator seeded seed + r.
    classifier = load_classifier(lenet_file)
    evaluator = GenerativeEvaluator(classifier, "fid,is,kid,pr", kid_subsets=10, kid_subset_size=40)
    images = ReferenceImages(_digits(), "train", NUM_REAL)
    key = reference_key(images, classifier, with_features=True)
    reference = compute_reference(classifier, images, key, batch_size=16)
    cached = StatisticsCache(cache).load(key, need_features=True)  # written by rank 0 of the DDP run
    # float64 sums over ranks add in another order than one process: ~n·eps·|x| apart (n ~ 1e3
    # features, |x| up to ~1e3 for squared terms: ~2e-10), so 1e-9 absolute, not exact or 1e-12.
    torch.testing.assert_close(cached.mean, reference.mean, rtol=1e-12, atol=1e-9)
    assert torch.equal(cached.features, reference.features)  # same order as a single process
    evaluator.set_reference(reference)
    for rank, share in enumerate(sample_shares(90, 2)):
        evaluator.sample_from(model, share, 16, torch.Generator().manual_seed(5 + rank))
    single = {f"val/{k}": v for k, v in evaluator.compute().items()}
    assert single.keys() == ranks[0]["values"].keys()
    for name, value in single.items():
        assert ranks[0]["values"][name] == pytest.approx(value, rel=1e-9, abs=1e-9), name  # a KID near 0: abs
