"""End to end on the synthetic shapes captions: train DAMSM (`genmodels train-damsm`), then StackGAN
stage I (or AttnGAN) with its frozen text encoder, and check that the images follow the captions' colours.

Measure: for "a <colour> circle" with each of the 4 colours, 50 samples each; an image's colour is the
nearest palette colour of its mean non-black pixel (`genmodels.text.metrics.shape_colour_accuracy`).
Chance is 0.25 (at chance, 200 samples give 0.25 +- 0.03). Measured for StackGAN: 0.320 after 1000
iterations with the authors' code's choices (0.555 before them; docs/reproducing.md (Text-to-image)).
"""

import warnings

import pytest
import pytorch_lightning as pl

from datamodules.text_image import SHAPE_COLOURS, TextImageDataModule
from genmodels import AttnGAN, StackGAN
from genmodels.commands import main
from genmodels.text.damsm import load_damsm
from genmodels.text.metrics import r_precision, shape_colour_accuracy
from tests.genmodels.gans.text_helpers import fit, one_thread  # noqa: F401 (autouse fixture)


@pytest.mark.slow
def test_stackgan_images_follow_the_caption_colour(tmp_path):
    damsm = tmp_path / "damsm.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # One Adam at a constant rate for this 10-epoch DAMSM, PyTorch's default init for the tiny
        # StackGAN: measured accuracies (seed 0, 1000 iterations, on this branch): 0.415 with both;
        # 0.285 with the authors' N(0, 0.02) init; 0.280 with AttnGAN's DAMSM schedule (new Adam per
        # epoch, lr x 0.98); 0.285 with both authors' choices. Those stay the defaults for real runs;
        # this test checks that the conditioning path carries the colour.
        main(["train-damsm", "--dataset", "shapes", "--image-size", "16", "--synthetic-size", "512", "--epochs", "10",
              "--batch-size", "32", "--num-workers", "0", "--dim", "32", "--embedding-dim", "16", "--width", "16",
              "--lr-decay", "1", "--one-optimizer", "--out", str(damsm)])
        pl.seed_everything(0)
        dm = TextImageDataModule("shapes", image_size=16, batch_size=32, num_workers=0, synthetic_size=512)
        model = StackGAN((3, 16, 16), dm.vocab, damsm_ckpt=str(damsm), latent_dim=16, condition_dim=16, gf_dim=8,
                         df_dim=8, text_dim=32, word_embedding_dim=16, lr_g=5e-4, lr_d=5e-4, weight_init="pytorch")
        fit(model, dm, 1000, tmp_path)
    model.eval()
    accuracy = shape_colour_accuracy(model, SHAPE_COLOURS, samples_per_colour=50)
    # Measured 0.555 when conditioning augmentation was a plain linear layer with the KL summed over
    # dimensions and D saw the compressed text; 0.320 with the StackGAN-Pytorch code's choices (CA
    # through a ReLU, so sigma >= 1; KL mean x 2; D conditioned on G's CA mean mu). 200 samples at
    # chance give 0.25 +- 0.03, so 0.3 still says the colours follow the captions.
    assert accuracy >= 0.3, f"colour-match accuracy {accuracy:.3f} (chance 0.25)"
    # R-precision with the same DAMSM runs on the validation captions (24 distinct: chance 1/24).
    captions = [caps[0] for caps in dm.records("val").captions]
    result = r_precision(model, load_damsm(str(damsm)), captions)
    assert result["candidates"] == 24 and 0.0 <= result["r_precision"] <= 1.0


@pytest.mark.slow
def test_attngan_images_follow_the_caption_colour(tmp_path):
    # AttnGAN's G also minimizes the DAMSM loss, which pulls the colours in within a few hundred
    # iterations. Measured here: 0.815 after 200 iterations (about 25 s, DAMSM included).
    damsm = tmp_path / "damsm.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-damsm", "--dataset", "shapes", "--image-size", "32", "--synthetic-size", "256", "--epochs", "6",
              "--batch-size", "32", "--num-workers", "0", "--dim", "32", "--embedding-dim", "16", "--width", "16",
              "--out", str(damsm)])
        pl.seed_everything(0)
        dm = TextImageDataModule("shapes", image_size=32, batch_size=32, num_workers=0, synthetic_size=256)
        model = AttnGAN((3, 32, 32), dm.vocab, damsm_ckpt=str(damsm), latent_dim=16, condition_dim=16, ngf=8, df_dim=8,
                        text_dim=32, word_embedding_dim=16, lr_g=5e-4, lr_d=5e-4)
        fit(model, dm, 200, tmp_path)
    accuracy = shape_colour_accuracy(model.eval(), SHAPE_COLOURS, samples_per_colour=50)
    assert accuracy >= 0.6, f"colour-match accuracy {accuracy:.3f} (chance 0.25)"
