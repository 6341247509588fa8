"""R-precision (top-1 among the true and up to 99 mismatched captions) and the shapes colour measure."""

import torch

from datamodules.text_image import SHAPE_COLOURS
from genmodels.text.metrics import fold_statistics, image_colours, r_precision_other_classes, r_precision_scores


def test_r_precision_is_one_for_perfect_features_and_chance_like_for_random():
    n = 150
    features = torch.randn(n, 32)
    captions = [f"caption {i}" for i in range(n)]
    hits, candidates = r_precision_scores(features, features, captions)
    assert candidates == 100 and hits.all()
    random_hits, _ = r_precision_scores(torch.randn(n, 32), features, captions, generator=torch.Generator().manual_seed(0))
    assert random_hits.float().mean() < 0.1


def test_r_precision_on_small_sets_uses_all_other_distinct_captions():
    features = torch.eye(4)
    captions = ["a", "b", "a", "c"]  # an identical text is never a mismatched candidate
    hits, candidates = r_precision_scores(features, features, captions)
    assert candidates == 3 and hits.all()


def test_image_colours_reads_the_shape_colour_on_black():
    images = -torch.ones(2, 3, 8, 8)
    images[0, :, 2:6, 2:6] = torch.tensor(SHAPE_COLOURS["blue"], dtype=torch.float)[:, None, None] / 127.5 - 1
    assert image_colours(images, SHAPE_COLOURS) == ["blue", None]


def test_other_class_protocol_never_draws_a_same_class_caption():
    """DM-GAN get_mis_caption: the 99 mismatched captions come from images of another class only;
    the hit is argmax == 0 over [true, 99 mismatched] cosine similarities."""
    images = torch.eye(3)
    sentences = torch.eye(3) * 0.5 + 0.1  # each true caption points at its image
    classes = torch.tensor([0, 1, 2])
    # pool: a same-class caption identical to each image (would beat the true one), and for class 2
    # an other-class caption identical to image 2's direction.
    pool = torch.cat([torch.eye(3), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])])
    pool_classes = torch.tensor([0, 1, 2, 0, 1])
    hits = r_precision_other_classes(images, sentences, classes, pool, pool_classes, generator=torch.Generator().manual_seed(0))
    # image 0, 1: every drawn mismatched caption is of another class and points elsewhere -> hit.
    # image 2: draws from classes 0, 1: rows 0, 1 (elsewhere) and 3, 4 (image 2's direction, 1.0 > true) -> miss
    assert hits.tolist() == [True, True, False]
    # the all-captions protocol instead can draw the same-class twin (identical features tie or win)
    with_any, _ = r_precision_scores(images, pool[:3], ["a", "b", "c"])
    assert with_any.all()


def test_fold_statistics_are_mean_and_std_of_ten_fold_rates():
    hits = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0] * 3, dtype=torch.bool)
    mean, std = fold_statistics(hits, 10, torch.Generator().manual_seed(3))
    order = torch.randperm(30, generator=torch.Generator().manual_seed(3)).tolist()
    rates = [sum(float(hits[order[f * 3 + j]]) for j in range(3)) / 3 for f in range(10)]
    expected_mean = sum(rates) / 10
    expected_std = (sum((r - expected_mean) ** 2 for r in rates) / 10) ** 0.5
    assert abs(mean - expected_mean) < 1e-6 and abs(std - expected_std) < 1e-6
