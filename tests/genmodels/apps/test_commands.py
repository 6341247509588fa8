"""``genmodels sample``, ``interpolate`` and ``export`` through the real CLI entry point."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.apps.export import EXPORT_FORMAT, load_generative_model
from genmodels.apps.generation import generate, grid_png
from genmodels.apps.latent import seeded_generator
from genmodels.commands import main
from tests.genmodels.apps.model_files import REPO, cgan_ckpt, dcgan_ckpt, ema_dcgan_ckpt, one_thread  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fitted_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint written by `genmodels fit` itself (2 iterations of the digits DCGAN, tiny)."""
    run = tmp_path_factory.mktemp("fit")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see `one_thread`; this module-scoped fixture runs before it
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run)
        main([
            "fit", "--config", str(REPO / "experiments/dcgan/digits.yaml"), "--trainer.default_root_dir", str(run),
            "--max_iterations", "2", "--model.init_args.feature_maps", "4", "--model.init_args.latent_dim", "8",
            "--data.init_args.image_size", "16", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        ])  # fmt: skip
    torch.set_num_threads(threads)
    return run / "checkpoints" / "last.ckpt"


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.slow
def test_sample_is_deterministic_for_a_seed(fitted_ckpt, tmp_path):
    first, second, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((first, "3"), (second, "3"), (other, "4")):
        main(["sample", "--ckpt", str(fitted_ckpt), "--n", "64", "--seed", seed, "--out", str(out), "--device", "cpu"])
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert pixels(first).shape == (8 * 18 + 2, 8 * 18 + 2, 3)  # 8 x 8 grid of 16 px images, 2 px padding
    model = load_generative_model(fitted_ckpt)
    assert first.read_bytes() == grid_png(model.sample(64, generator=seeded_generator(3)))


def test_sample_writes_one_png_per_image_and_applies_truncation(dcgan_ckpt, tmp_path):
    main(["sample", "--ckpt", str(dcgan_ckpt), "--n", "5", "--seed", "1", "--out", str(tmp_path / "plain"), "--device", "cpu"])
    main(["sample", "--ckpt", str(dcgan_ckpt), "--n", "5", "--seed", "1", "--truncation", "0.2",
          "--out", str(tmp_path / "truncated"), "--device", "cpu"])  # fmt: skip
    plain = sorted((tmp_path / "plain").glob("*.png"))
    assert [p.name for p in plain] == [f"{i:06d}.png" for i in range(5)]
    with Image.open(plain[0]) as image:
        assert (image.mode, image.size) == ("L", (16, 16))  # one-channel images stay greyscale
    model = load_generative_model(dcgan_ckpt)
    expected = ((generate(model, 5, 1, truncation=0.2)[0, 0] + 1) * 127.5).round().clamp(0, 255).numpy().astype(np.uint8)
    assert np.array_equal(pixels(tmp_path / "truncated" / "000000.png")[..., 0], expected)
    assert not np.array_equal(pixels(plain[0]), pixels(tmp_path / "truncated" / "000000.png"))


def test_sample_conditions_a_conditional_gan(cgan_ckpt, tmp_path):
    out = tmp_path / "sevens.png"
    main(["sample", "--ckpt", str(cgan_ckpt), "--n", "4", "--seed", "2", "--condition", "7", "--out", str(out), "--device", "cpu"])
    model = load_generative_model(cgan_ckpt)
    assert out.read_bytes() == grid_png(model.sample(4, condition=7, generator=seeded_generator(2)))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--condition", "3"], "DCGAN is unconditional"),
        (["--n", "0"], "must be >= 1"),
        (["--seed", "-1"], "seed must be in"),
        (["--truncation", "0"], "must be > 0"),
        (["--out", "grid.jpg"], "must be a .png file or a directory"),
    ],
)
def test_sample_rejects_bad_values_with_a_message(dcgan_ckpt, capsys, extra, message):
    out = [] if "--out" in extra else ["--out", "grid.png"]
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt", str(dcgan_ckpt), "--device", "cpu", *out, *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sample_reports_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", "x.png"])
    assert "genmodels: error: checkpoint not found" in capsys.readouterr().err


def test_interpolate_writes_a_gif_and_a_strip_whose_ends_are_the_seeds(dcgan_ckpt, tmp_path):
    gif, strip = tmp_path / "interp.gif", tmp_path / "interp.png"
    base = ["interpolate", "--ckpt", str(dcgan_ckpt), "--steps", "6", "--seeds", "3", "9", "--n", "2", "--device", "cpu"]
    main(base + ["--out", str(gif)])
    main(base + ["--out", str(strip)])
    with Image.open(gif) as image:
        assert image.n_frames == 6 and image.info.get("loop") == 0
    model = load_generative_model(dcgan_ckpt)
    rows = pixels(strip)
    assert rows.shape == (2 * 18 + 2, 6 * 18 + 2, 3)
    start = (generate(model, 2, 3)[:, 0] + 1) * 127.5
    end = (generate(model, 2, 9)[:, 0] + 1) * 127.5
    for path in range(2):
        top = 2 + 18 * path
        assert np.abs(rows[top : top + 16, 2:18, 0] - start[path].round().numpy()).max() <= 1
        assert np.abs(rows[top : top + 16, 2 + 18 * 5 : 18 * 6, 0] - end[path].round().numpy()).max() <= 1


def test_export_weights_is_weights_only_without_training_networks(ema_dcgan_ckpt, tmp_path):
    out = tmp_path / "generator.pt"
    main(["export", "--ckpt", str(ema_dcgan_ckpt), "--out", str(out)])
    payload = torch.load(out, weights_only=True)
    assert payload["format"] == EXPORT_FORMAT
    assert payload["config"] == {"image_shape": [1, 16, 16], "latent_dim": 8, "num_classes": 0, "latent_space": "z",
                                 "latent_distribution": "normal"}  # fmt: skip
    # The EMA generator is what `sample` uses: D and the raw G stay behind.
    assert all(key.startswith("generator_ema.") for key in payload["state_dict"])
    exported, original = load_generative_model(out), load_generative_model(ema_dcgan_ckpt)
    assert exported.iteration == 7
    assert torch.equal(generate(exported, 8, 4), generate(original, 8, 4))
    main(["sample", "--ckpt", str(out), "--n", "4", "--out", str(tmp_path / "a.png"), "--device", "cpu"])
    main(["sample", "--ckpt", str(ema_dcgan_ckpt), "--n", "4", "--out", str(tmp_path / "b.png"), "--device", "cpu"])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.slow
def test_exported_program_equals_the_eager_model(dcgan_ckpt, tmp_path, capsys):
    out = tmp_path / "generator.pt2"
    main(["export", "--ckpt", str(dcgan_ckpt), "--out", str(out), "--format", "program"])
    assert "max |exported - eager| = 0" in capsys.readouterr().out
    program = torch.export.load(out).module()  # our own file: torch.export.load may unpickle
    model = load_generative_model(dcgan_ckpt)
    for batch in (1, 5):  # the batch dimension is dynamic
        z = model.sample_latent(batch, seeded_generator(batch))
        assert torch.equal(program(z), model.sampling_generator(z))
    # Only what z -> images needs: the generator's tensors, none of the discriminator's.
    saved = torch.export.load(out).state_dict
    generator = {f"model.{k}" for k in model.state_dict() if k.startswith("generator.")}
    assert set(saved) and set(saved) <= generator and not any("discriminator" in k for k in saved), sorted(saved)[:5]
    # sample/serve read checkpoints and weights files; a program is refused with what it is for.
    for command in (["sample", "--out", str(tmp_path / "s.png")], ["serve"]):
        with pytest.raises(SystemExit) as exit:
            main([*command, "--ckpt", str(out)])
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert "is a `genmodels export --format program` file" in err and "torch.export.load" in err, err
        assert "corrupt" not in err
