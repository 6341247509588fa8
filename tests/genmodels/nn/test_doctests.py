"""The docstring examples of the translation blocks and models run as written."""

import doctest

import pytest

from genmodels.gans import cyclegan, pix2pix
from genmodels.nn import image_pool, patchgan, resnet_generator, unet


@pytest.mark.parametrize("module", [unet, patchgan, resnet_generator, image_pool, pix2pix, cyclegan], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
