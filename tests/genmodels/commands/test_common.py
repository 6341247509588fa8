"""The shared command layer: kebab-case options with hidden old spellings, output and memory checks."""

from __future__ import annotations

import argparse

import pytest

from genmodels.commands import common as c
from genmodels.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = c.CommandParser(prog="genmodels demo")
    c.add_ckpt(parser)
    c.add_num_samples(parser, 64, "images", aliases=("--n",))
    c.add_batch_size(parser, 16)
    return parser


@pytest.mark.parametrize("spelling", ["--num-samples", "--num_samples", "--n"])
def test_old_spellings_are_hidden_aliases_of_the_kebab_case_option(spelling):
    args = _parser().parse_args(["--ckpt", "a.ckpt", spelling, "7", "--batch_size", "3"])
    assert args.num_samples == 7 and args.batch_size == 3
    c.check_required(args, "genmodels demo")


def test_aliases_do_not_show_in_help_and_defaults_survive():
    parser = _parser()
    text = parser.format_help()
    assert "--num-samples N" in text and "--num_samples" not in text and "--n " not in text
    assert parser.parse_args(["--ckpt", "x"]).num_samples == 64


def test_required_is_checked_after_parsing_and_bad_values_are_usage_errors():
    parser = _parser()
    with pytest.raises(UserError, match=r"required: --ckpt \(see `genmodels demo --help`\)"):
        c.check_required(parser.parse_args([]), "genmodels demo")
    # argparse names the spelling the user typed
    with pytest.raises(c.UsageError, match="argument --n: must be >= 1, got 0"):
        parser.parse_args(["--ckpt", "x", "--n", "0"])


def test_check_output_refuses_inputs_existing_files_and_unwritable_places(tmp_path):
    existing = tmp_path / "a.png"
    existing.write_bytes(b"kept")
    with pytest.raises(UserError, match="also an input"):
        c.check_output(existing, inputs=[existing], overwrite=True)
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        c.check_output(existing)
    assert c.check_output(existing, overwrite=True) == existing
    with pytest.raises(UserError, match="is a file, not a directory"):
        c.check_output(existing / "deeper/b.png")
    with pytest.raises(UserError, match="must end in .gif or .png"):
        c.check_output(tmp_path / "b.jpg", suffixes=(".gif", ".png"))
    with pytest.raises(UserError, match="is a directory"):
        c.check_output(tmp_path)
    assert c.check_output(tmp_path / "new/dir/b.png") == tmp_path / "new/dir/b.png"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert existing.read_bytes() == b"kept"


def test_check_output_dir_refuses_input_folders_and_files_it_would_replace(tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    with pytest.raises(UserError, match="inside the input folder"):
        c.check_output_dir(source / "sub", ["a.png"], inputs=[source])
    with pytest.raises(UserError, match="inside the input folder"):
        c.check_output_dir(source, ["a.png"], inputs=[source])
    out = tmp_path / "out"
    out.mkdir()
    (out / "000001.png").write_bytes(b"old")
    with pytest.raises(UserError, match="already holds 000001.png; pass --overwrite"):
        c.check_output_dir(out, ["000000.png", "000001.png"])
    assert c.check_output_dir(out, ["000000.png", "000001.png"], overwrite=True) == out
    assert c.check_output_dir(out, ["000002.png"]) == out  # files it does not write are not its business


def test_check_memory_names_the_request_the_limit_and_the_fix():
    c.check_memory(2 * 1024**3, "x", "lower --x", max_memory_gb=2)  # at the limit: allowed
    with pytest.raises(UserError) as info:
        c.check_memory(c.image_bytes((3, 64, 64), 10**9, 5), "--num-samples 1000000000", "lower --num-samples", 8)
    message = str(info.value)
    assert message.startswith("--num-samples 1000000000 needs about 55.9 TiB of memory, over the --max-memory-gb 8 limit")
    assert "lower --num-samples, or raise --max-memory-gb" in message


def test_image_bytes_counts_every_value():
    assert c.image_bytes((3, 4, 5), 2) == 2 * 3 * 4 * 5 * 4
    assert c.image_bytes((1, 16, 16), 10, 1) == 2560
