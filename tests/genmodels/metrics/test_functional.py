"""The metric mathematics against independent computations on the same features."""

import numpy as np
import pytest
import scipy.linalg
import torch

from genmodels.metrics import functional as F


def _gaussian(n, d, seed, shift=0.0, scale=1.0):
    """n samples of a correlated d-dim Gaussian (the same one for every seed), scaled and shifted."""
    noise = torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    mixing = torch.eye(d, dtype=torch.float64) + noise / (2 * d**0.5)
    samples = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return samples @ mixing * scale + shift


def _scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    """TTUR's formula with scipy.linalg.sqrtm, written from the paper (not from our code)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _fid(x: torch.Tensor, y: torch.Tensor) -> float:
    mx, cx = F.mean_and_covariance(*F.moment_sums(x), len(x))
    my, cy = F.mean_and_covariance(*F.moment_sums(y), len(y))
    return F.frechet_distance(mx, cx, my, cy).item()


@pytest.mark.parametrize("d", [8, 64])
def test_fid_equals_scipy_sqrtm_reference(d):
    x, y = _gaussian(600, d, 0), _gaussian(500, d, 1, shift=0.3, scale=1.2)
    expected = _scipy_fid(x.numpy(), y.numpy())
    assert expected > 1
    x32, y32 = x.float(), y.float()  # float32 features, as extractors give
    assert _fid(x32, y32) == pytest.approx(_scipy_fid(x32.double().numpy(), y32.double().numpy()), rel=1e-6)
    assert _fid(x, y) == pytest.approx(expected, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_statistics_match_numpy():
    x = _gaussian(400, 32, 2)
    assert abs(_fid(x, x)) < 1e-8
    mean, cov = F.mean_and_covariance(*F.moment_sums(x), len(x))
    np.testing.assert_allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean.numpy(), x.numpy().mean(0), rtol=1e-12)


def test_fid_with_singular_covariances_stays_real_and_non_negative():
    # n < d: both covariances are singular, where eigvals of S1 S2 give complex noise.
    x, y = _gaussian(20, 64, 3), _gaussian(20, 64, 4)
    # Rounding noise on the ~45 zero eigenvalues: tiny against the trace (about 64).
    assert _fid(x, x) == pytest.approx(0, abs=1e-4)
    value = _fid(x, y)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(_scipy_fid(x.numpy(), y.numpy()), rel=1e-4)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same d"):
        F.frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))


# ---------------------------------------------------------------------------------------------


def _direct_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Gretton et al.'s unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, written as explicit sums."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_the_unbiased_mmd_formula():
    real, fake = _gaussian(30, 5, 5), _gaussian(30, 5, 6, shift=0.5)
    # One subset of every sample: a permutation of the sets, which the estimator does not see.
    mean, std = F.kernel_inception_distance(real, fake, subsets=1, subset_size=30)
    assert mean == pytest.approx(_direct_unbiased_mmd2(fake.numpy(), real.numpy()), rel=1e-10)
    assert std == 0
    kernels = (F.polynomial_kernel(a, b) for a, b in ((fake, fake), (real, real), (fake, real)))
    assert F.mmd2_unbiased(*kernels).item() == pytest.approx(mean, rel=1e-12)


def test_kid_matches_torch_fidelity_on_the_same_features():
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = _gaussian(120, 16, 7).float(), _gaussian(100, 16, 8, shift=0.2).float()
    ours = F.kernel_inception_distance(real, fake, subsets=20, subset_size=50)
    theirs = kid_features_to_metric(fake, real, kid_subsets=20, kid_subset_size=50, rng_seed=2020, verbose=False)
    assert ours[0] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours[1] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-3)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    real = _gaussian(300, 8, 9)
    same, spread = F.kernel_inception_distance(real, _gaussian(300, 8, 10), subsets=10, subset_size=100)
    far = F.kernel_inception_distance(real, _gaussian(300, 8, 11, shift=1.0), subsets=10, subset_size=100)[0]
    assert abs(same) < 3 * spread < 0.05 * far  # unbiased: zero up to noise for one distribution
    with pytest.raises(ValueError, match=r"subset_size must be in \[2, min"):
        F.kernel_inception_distance(real, real[:10], subset_size=50)


# ---------------------------------------------------------------------------------------------


def test_inception_score_is_number_of_classes_for_confident_uniform_predictions():
    k, splits = 10, 5
    labels = torch.arange(k * splits * 4) % k  # every contiguous split holds each class equally
    logits = torch.nn.functional.one_hot(labels, k).double() * 50
    mean, std = F.inception_score(logits, splits=splits, seed=None)
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0, abs=1e-9)
    # With the seeded shuffle the splits are only roughly balanced: a little below k.
    shuffled = F.inception_score(logits, splits=splits)[0]
    assert 0.9 * k < shuffled <= k


def test_inception_score_is_one_for_constant_predictions():
    logits = torch.randn(1, 7).repeat(200, 1)
    mean, std = F.inception_score(logits, splits=10)
    assert mean == pytest.approx(1, abs=1e-12) and std == pytest.approx(0, abs=1e-12)


def test_inception_score_matches_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(250, 12, generator=torch.Generator().manual_seed(0)) * 3
    ours = F.inception_score(logits, splits=10)
    theirs = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    assert ours[0] == pytest.approx(theirs["inception_score_mean"], rel=1e-10)
    assert ours[1] == pytest.approx(theirs["inception_score_std"], rel=1e-8)
    with pytest.raises(ValueError, match="at least 10 samples"):
        F.inception_score(logits[:5], splits=10)


# ---------------------------------------------------------------------------------------------


def test_precision_recall_identical_and_disjoint_sets():
    x = _gaussian(200, 8, 12).float()
    assert F.precision_recall(x, x.clone()) == (1.0, 1.0)
    assert F.precision_recall(x, x + 100) == (0.0, 0.0)


def test_precision_recall_fall_as_one_gaussian_moves_away():
    real = _gaussian(400, 4, 13).float()
    shifted = [_gaussian(400, 4, 14, shift=s).float() for s in (0.0, 0.5, 1.0, 2.0)]
    results = [F.precision_recall(real, fake, batch_size=64) for fake in shifted]
    precisions, recalls = zip(*results)
    assert precisions[0] > 0.8 and recalls[0] > 0.8
    assert all(a > b for a, b in zip(precisions, precisions[1:]))
    assert all(a > b for a, b in zip(recalls, recalls[1:]))


def test_mode_collapse_keeps_precision_and_loses_recall():
    real = _gaussian(400, 4, 15).float()
    collapsed = _gaussian(400, 4, 16, scale=0.2).float()  # samples crowd the centre of the data
    precision, recall = F.precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.5


def test_precision_recall_match_torch_fidelity_and_blocking_does_not_matter():
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    real, fake = _gaussian(150, 6, 17).float(), _gaussian(120, 6, 18, shift=0.4).float()
    theirs = calculate_precision_recall_full(fake, real, neighborhood=3)  # (generated, real)
    assert F.precision_recall(real, fake, k=3) == pytest.approx(theirs, rel=1e-6)  # theirs: a float32 mean
    assert F.precision_recall(real, fake, k=3, batch_size=7) == pytest.approx(theirs, rel=1e-6)
    radii = F.knn_radii(real, k=3)
    brute = torch.cdist(real, real).sort(dim=1).values[:, 3]
    torch.testing.assert_close(radii, brute)
