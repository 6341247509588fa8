"""The Streamlit explorer's logic through streamlit.testing's AppTest (no browser)."""

import pytest
from streamlit.testing.v1 import AppTest

from genmodels.apps.export import load_generative_model
from genmodels.apps.generation import condition_labels, decode_codes, generate, grid_png, interpolation_frames
from genmodels.apps.latent import latent_space
from genmodels.apps.serve import STREAMLIT_APP
from tests.genmodels.apps.model_files import cgan_ckpt, dcgan_ckpt, malicious_checkpoint, one_thread  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


def app(monkeypatch, ckpt) -> AppTest:
    monkeypatch.setenv("GENMODELS_CKPT", str(ckpt))
    return AppTest.from_file(str(STREAMLIT_APP), default_timeout=120).run()


def test_generate_shows_the_seeds_grid_and_offers_the_png(dcgan_ckpt, monkeypatch):
    at = app(monkeypatch, dcgan_ckpt)
    assert not at.exception and len(at.image) == 0 and at.title[0].value == "DCGAN explorer"
    at.number_input(key="seed").set_value(5)
    at.slider(key="n").set_value(9)
    at.button(key="generate").click().run()
    model = load_generative_model(dcgan_ckpt)
    assert at.session_state["grid_png"] == grid_png(generate(model, 9, 5))
    assert len(at.image) >= 1 and at.download_button(key="download").label == "Download PNG"
    # Changing a control does not redraw the grid until Generate is clicked again.
    at.checkbox(key="truncate").check().run()
    at.slider(key="truncation").set_value(0.5).run()
    assert at.session_state["grid_png"] == grid_png(generate(model, 9, 5))
    at.button(key="generate").click().run()
    assert at.session_state["grid_png"] == grid_png(generate(model, 9, 5, truncation=0.5))


def test_direction_sliders_and_interpolation(dcgan_ckpt, monkeypatch):
    at = app(monkeypatch, dcgan_ckpt)
    at.button(key="generate").click().run()
    assert at.session_state["edited_png"] == at.session_state["grid_png"]  # all sliders at 0
    at.slider(key="pc_0").set_value(2.0).run()
    model = load_generative_model(dcgan_ckpt)
    space = latent_space(model)
    directions = space.directions(k=5)
    edited = decode_codes(space, directions.edit(space.codes(16, 0), [2.0, 0, 0, 0, 0]))
    assert at.session_state["edited_png"] == grid_png(edited) != at.session_state["grid_png"]
    at.number_input(key="seed_b").set_value(7)
    at.slider(key="steps").set_value(4)
    at.button(key="interpolate").click().run()
    frames = interpolation_frames(model, 0, 7, 4, 4)
    assert at.session_state["interpolation_png"] == grid_png(frames.transpose(0, 1).reshape(-1, 1, 16, 16), nrow=4)


def test_class_choice_conditions_the_grid(cgan_ckpt, monkeypatch):
    at = app(monkeypatch, cgan_ckpt)
    assert at.selectbox(key="condition").options[:3] == ["all classes", "0", "1"]
    at.selectbox(key="condition").set_value(3)
    at.button(key="generate").click().run()
    model = load_generative_model(cgan_ckpt)
    assert at.session_state["grid_png"] == grid_png(generate(model, 16, 0, condition=3))
    assert condition_labels(model, 3, 2).tolist() == [3, 3]


def test_unsafe_or_missing_checkpoints_are_reported_on_the_page(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran.txt"
    at = app(monkeypatch, malicious_checkpoint(tmp_path / "crafted.ckpt", marker))
    assert "needs trust" in at.error[0].value and not marker.exists() and len(at.button) == 0
    at = app(monkeypatch, tmp_path / "missing.ckpt")
    assert "checkpoint not found" in at.error[0].value
