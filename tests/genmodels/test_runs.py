"""Run-directory reading: the offline W&B segments of one run, in launch order."""

from __future__ import annotations

from pathlib import Path

from genmodels.runs import offline_segments


def _segments(root: Path, *names: str) -> None:
    for name in names:
        (root / "wandb" / name).mkdir(parents=True)


def test_segments_started_in_the_same_second_are_all_found_in_launch_order(tmp_path: Path):
    # W&B names a second launch of run "abc123de" within the same second "...-abc123de-1", then "-2";
    # found in CI when a resume and `genmodels test` both started at 02:25:14.
    _segments(tmp_path, "offline-run-20261207_022514-abc123de-2", "offline-run-20261207_022512-abc123de",
              "offline-run-20261207_022514-abc123de-10", "offline-run-20261207_022514-abc123de",
              "offline-run-20261207_022514-abc123de-1", "offline-run-20261207_022513-zzz99999")
    (tmp_path / "wandb" / "offline-run-20261207_022515-abc123de.txt").write_text("not a segment")
    names = [p.name.removeprefix("offline-run-20261207_") for p in offline_segments(tmp_path, "abc123de")]
    assert names == ["022512-abc123de", "022514-abc123de", "022514-abc123de-1", "022514-abc123de-2",
                     "022514-abc123de-10"]
    everything = [p.name.removeprefix("offline-run-20261207_") for p in offline_segments(tmp_path)]
    assert everything == ["022512-abc123de", "022513-zzz99999", *names[1:]]


def test_a_run_id_that_is_a_prefix_of_another_does_not_claim_its_segments(tmp_path: Path):
    _segments(tmp_path, "offline-run-20261207_022512-run", "offline-run-20261207_022513-run-2b",
              "offline-run-20261207_022514-my-run", "offline-run-20261207_022515-run-3")
    assert [p.name for p in offline_segments(tmp_path, "run")] == ["offline-run-20261207_022512-run",
                                                                    "offline-run-20261207_022515-run-3"]
    assert [p.name for p in offline_segments(tmp_path, "my-run")] == ["offline-run-20261207_022514-my-run"]
