"""Streamlit explorer for a trained generative model (``genmodels serve --ckpt PATH``).

``genmodels serve`` runs it as ``streamlit run streamlit_app.py -- --ckpt PATH [--device cpu]``
(`genmodels.apps.serve.streamlit_command`); without ``--ckpt`` the path comes from
``$GENMODELS_CKPT``, which is how the tests drive it with streamlit's AppTest. The checkpoint is
opened with ``weights_only=True`` like everywhere else.

- Sidebar: seed, number of images, class (conditional models), truncation.
- Samples: "Generate" draws the grid for the sidebar's settings; "Download PNG" saves it at the
  model's resolution (the page shows it enlarged, nearest neighbour).
- Latent directions: sliders move the grid's codes along the top principal directions of the
  latent space (GANSpace, `genmodels.apps.latent`), in standard deviations.
- Interpolation: from seed A's codes to seed B's (spherical in Z, linear in W).

The PNGs shown last are kept in ``st.session_state`` (``grid_png``, ``edited_png``,
``interpolation_png``) so tests can compare them with `genmodels.apps.generation`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Optional

import streamlit as st
import torch

from genmodels.apps.export import load_generative_model
from genmodels.apps.generation import condition_labels, decode_codes, generate, grid_png, interpolation_frames, num_classes
from genmodels.apps.latent import MAX_SEED, Directions, latent_space
from genmodels.checkpoints import CheckpointError
from genmodels.protocols import Autoencoder, LatentGenerator

CKPT_ENV = "GENMODELS_CKPT"
#: The grid is enlarged on the page to about this width (pixels).
DISPLAY_WIDTH = 512
NUM_DIRECTIONS = 5


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose; hashable, so a grid is identified by it."""

    seed: int
    n: int
    condition: Any  # None, "all" or an int
    truncation: Optional[float]


def options_from_argv(argv: list[str]) -> argparse.Namespace:
    """``-- --ckpt PATH --device D --threads T``; the checkpoint defaults to ``$GENMODELS_CKPT``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--ckpt", default=os.environ.get(CKPT_ENV))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_known_args(argv)[0]


@st.cache_resource(show_spinner="loading the checkpoint")
def load_model(ckpt: str, device: str) -> Any:
    return load_generative_model(ckpt, device)


@st.cache_resource(show_spinner="computing principal directions")
def principal_directions(ckpt: str, device: str, condition: Any, k: int) -> Directions:
    model = load_model(ckpt, device)
    space = latent_space(model)
    return space.directions(k=k, condition=condition_labels(model, condition, 512))


def display_png(images: Any, scale_to: int = DISPLAY_WIDTH, nrow: Optional[int] = None) -> bytes:
    """The grid enlarged by an integer factor to about ``scale_to`` pixels wide (for the page only)."""
    per_row = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    width = per_row * (images.shape[-1] + 2) + 2
    return grid_png(images, nrow=nrow, scale=max(1, min(16, scale_to // width)))


# ---------------------------------------------------------------------------------------------
# Page sections


def sidebar(model: Any, space: Any) -> Settings:
    st.sidebar.header("Sampling")
    seed = int(st.sidebar.number_input("Seed", min_value=0, max_value=MAX_SEED, value=0, step=1, key="seed"))
    n = int(st.sidebar.slider("Images", min_value=1, max_value=64, value=16, key="n"))
    condition: Any = None
    classes = num_classes(model)
    if classes:
        choice = st.sidebar.selectbox("Class", ["all classes", *range(classes)], key="condition")
        condition = "all" if choice == "all classes" else int(choice)
    truncation = None
    if space is not None and st.sidebar.checkbox("Truncation", value=False, key="truncate"):
        # Z: resample components beyond psi (BigGAN); W: pull toward the mean w (StyleGAN).
        low, high, default = (0.1, 3.0, 1.0) if space.kind == "z" else (0.05, 1.0, 0.7)
        truncation = float(st.sidebar.slider("psi", low, high, default, step=0.05, key="truncation"))
    return Settings(seed, n, condition, truncation)


def samples_section(model: Any, settings: Settings) -> Optional[Settings]:
    """The grid of the settings last generated (None until "Generate" is clicked)."""
    st.subheader("Samples")
    if st.button("Generate", key="generate", type="primary"):
        st.session_state["grid_settings"] = settings
    shown: Optional[Settings] = st.session_state.get("grid_settings")
    if shown is None:
        st.caption("Choose seed, class and truncation in the sidebar, then click Generate.")
        return None
    images = generate(model, shown.n, shown.seed, shown.condition, shown.truncation)
    st.session_state["grid_png"] = grid_png(images)
    st.image(display_png(images), caption=f"seed {shown.seed}, {shown.n} images", output_format="PNG")
    name = f"genmodels_seed{shown.seed}.png"
    st.download_button("Download PNG", data=st.session_state["grid_png"], file_name=name, mime="image/png", key="download")
    return shown


def directions_section(model: Any, space: Any, shown: Settings, ckpt: str, device: str) -> None:
    st.subheader("Latent directions")
    k = min(NUM_DIRECTIONS, model.latent_dim) if isinstance(model, (LatentGenerator, Autoencoder)) else NUM_DIRECTIONS
    directions = principal_directions(ckpt, device, shown.condition, k)
    st.caption(f"Principal directions of {space.kind.upper()} (GANSpace); sliders in standard deviations.")
    columns = st.columns(len(directions.vectors))
    amounts = [
        column.slider(f"PC{i + 1} ({100 * float(share):.0f}%)", -3.0, 3.0, 0.0, step=0.25, key=f"pc_{i}")
        for i, (column, share) in enumerate(zip(columns, directions.explained))
    ]
    labels = condition_labels(model, shown.condition, shown.n)
    codes = directions.edit(space.codes(shown.n, shown.seed, labels, shown.truncation), amounts)
    images = decode_codes(space, codes, labels)
    st.session_state["edited_png"] = grid_png(images)
    caption = "edited: " + ", ".join(f"PC{i + 1} {a:+.2f}" for i, a in enumerate(amounts))
    st.image(display_png(images), output_format="PNG", caption=caption)


def interpolation_section(model: Any, shown: Settings) -> None:
    st.subheader("Interpolation")
    left, middle, right = st.columns(3)
    seed_a = int(left.number_input("Seed A", 0, MAX_SEED, shown.seed, key="seed_a"))
    seed_b = int(middle.number_input("Seed B", 0, MAX_SEED, min(shown.seed + 1, MAX_SEED), key="seed_b"))
    steps = int(right.slider("Steps", 2, 16, 8, key="steps"))
    if st.button("Interpolate", key="interpolate"):
        paths = min(shown.n, 4)
        frames = interpolation_frames(model, seed_a, seed_b, steps, paths, shown.condition, shown.truncation)
        rows = frames.transpose(0, 1).reshape(-1, *frames.shape[2:])
        st.session_state["interpolation_png"] = grid_png(rows, nrow=steps)
        st.image(display_png(rows, nrow=steps), output_format="PNG", caption=f"seed {seed_a} -> seed {seed_b}, one row per path")


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="genmodels explorer", layout="wide")
    options = options_from_argv(argv)
    ckpt, device = options.ckpt, options.device
    if options.threads:
        torch.set_num_threads(options.threads)
    if not ckpt:
        st.error(f"No checkpoint: run `genmodels serve --ckpt PATH`, or set ${CKPT_ENV}.")
        st.stop()
    try:
        model = load_model(ckpt, device)
    except (CheckpointError, FileNotFoundError) as err:
        st.error(str(err))
        st.stop()
    st.title(f"{type(model).__name__} explorer")
    st.caption(f"{os.path.basename(ckpt)}, iteration {model.iteration}, images {tuple(model.image_shape)}")
    space = latent_space(model)
    shown = samples_section(model, sidebar(model, space))
    if shown is None:
        return
    if space is None:
        st.info(f"{type(model).__name__} exposes no latent space: directions and interpolation are not available.")
        return
    directions_section(model, space, shown, ckpt, device)
    interpolation_section(model, shown)


if __name__ == "__main__":  # how `streamlit run` and AppTest execute it; importing only defines
    main(sys.argv[1:])
