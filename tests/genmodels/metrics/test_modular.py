"""The torchmetrics classes: accumulation, references, memory bounds, warnings and errors."""

import warnings

import pytest
import torch

from genmodels.metrics import FrechetDistance, InceptionScore, KernelDistance, PrecisionRecall
from genmodels.metrics import functional as F


def _features(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_fid_in_batches_equals_the_functional_value_on_all_features():
    real, fake = _features(300, 16, 0), _features(250, 16, 1, shift=0.5)
    metric = FrechetDistance(16)
    metric.update(real, real=True)
    for chunk in fake.split(64):
        metric.update(chunk)
    value = metric.compute()
    mr, cr = F.mean_and_covariance(*F.moment_sums(real), 300)
    mf, cf = F.mean_and_covariance(*F.moment_sums(fake), 250)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(F.frechet_distance(mr, cr, mf, cf).item(), rel=1e-10)

    # A reference set from precomputed statistics gives the same value.
    cached = FrechetDistance(16)
    cached.set_reference(mr, cr, 300)
    cached.update(fake)
    assert cached.compute().item() == pytest.approx(value.item(), rel=1e-10)
    with pytest.raises(ValueError, match="set_reference"):
        cached.update(real, real=True)


def test_fid_state_is_running_sums_whose_size_does_not_grow_with_samples():
    d = 2048
    metric = FrechetDistance(d)
    def state_bytes():
        return sum(getattr(metric, name).numel() * getattr(metric, name).element_size() for name in metric._defaults)

    before = state_bytes()
    for seed in range(3):
        metric.update(_features(500, d, seed))
    assert state_bytes() == before  # 1,500 samples added, not one byte more
    assert all(not isinstance(default, list) for default in metric._defaults.values())  # no list of features
    # Two sides x (d + d^2 + 1) float64 numbers: ~64 MiB at d=2048, the same for 50,000 samples.
    assert before == 2 * (d + d * d) * 8 + 2 * 8
    assert int(metric.fake_n) == 1500


def test_fid_warns_with_the_numbers_when_samples_cannot_give_a_full_rank_covariance():
    metric = FrechetDistance(32)
    metric.update(_features(20, 32, 0), real=True)
    metric.update(_features(100, 32, 1))
    with pytest.warns(UserWarning, match=r"FID from 20 real samples of 32-d features: .* rank at most 19 < 32"):
        metric.compute()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = FrechetDistance(4)
        ok.update(_features(50, 4, 2), real=True)
        ok.update(_features(50, 4, 3))
        ok.compute()  # enough samples: no warning


def test_reset_forgets_generated_samples_but_keeps_reference_or_real_features_when_asked():
    real = _features(100, 8, 0)
    kept = FrechetDistance(8, reset_real_features=False)
    kept.update(real, real=True)
    kept.update(_features(100, 8, 1))
    first = kept.compute()
    kept.reset()
    assert int(kept.fake_n) == 0 and int(kept.real_n) == 100
    kept.update(_features(100, 8, 1))
    assert kept.compute() == first

    kid = KernelDistance(8, subsets=5, subset_size=50)
    kid.set_reference(real)
    kid.update(_features(100, 8, 1))
    kid.compute()
    kid.reset()
    assert len(kid.fake_features) == 0 and kid.reference_features is not None


def test_kid_class_equals_functional_and_caps_subset_size_with_a_warning():
    real, fake = _features(80, 8, 0), _features(60, 8, 1, shift=0.3)
    metric = KernelDistance(8, subsets=10, subset_size=1000)
    metric.update(real, real=True)
    for chunk in fake.split(25):
        metric.update(chunk)
    expected = r"subset_size 1000 is more than the samples available \(80 real, 60 generated\); using subsets of 60"
    with pytest.warns(UserWarning, match=expected):
        mean, std = metric.compute()
    assert (mean.item(), std.item()) == pytest.approx(F.kernel_inception_distance(real, fake, 10, 60), rel=1e-12)


def test_precision_recall_and_inception_score_classes():
    real = _features(120, 4, 0)
    pr = PrecisionRecall(4, k=3)
    pr.set_reference(real)
    pr.update(real[:60])
    pr.update(real[60:])
    precision, recall = pr.compute()
    assert (precision.item(), recall.item()) == (1.0, 1.0)

    labels = torch.arange(100) % 5
    inception_score = InceptionScore(num_classes=5, splits=4, seed=None)
    inception_score.update(torch.nn.functional.one_hot(labels, 5).float() * 40)
    mean, std = inception_score.compute()
    assert mean.item() == pytest.approx(5, rel=1e-9) and std.item() == pytest.approx(0, abs=1e-9)


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match=r"shape \(N, 8\)"):
        FrechetDistance(8).update(torch.zeros(4, 9))
    with pytest.raises(ValueError, match="NaN"):
        KernelDistance(2).update(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="no real features"):
        metric = PrecisionRecall(2)
        metric.update(torch.zeros(5, 2))
        metric.compute()
