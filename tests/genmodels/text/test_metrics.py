"""R-precision (top-1 among the true and up to 99 mismatched captions) and the shapes colour measure."""

import torch

from datamodules.text_image import SHAPE_COLOURS
from genmodels.text.metrics import image_colours, r_precision_scores


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
