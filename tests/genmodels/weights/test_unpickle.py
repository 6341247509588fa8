"""The restricted unpickler reads NVlabs snapshots without running anything they carry."""

from __future__ import annotations

import os
import pickle

import pytest

from genmodels.commands import invoke
from genmodels.weights import WeightsError
from genmodels.weights.unpickle import PersistentObject, load_snapshot
from tests.genmodels.weights.snapshots import Reduce, _Global, dumps, persistent, write_snapshot


def payload(marker) -> str:
    """Module source that writes ``marker`` when executed (what the official loader would do)."""
    return f"open({str(marker)!r}, 'w').write('ran')\nclass Generator:\n    pass\n"


def test_embedded_source_is_never_executed(tmp_path):
    """The official layout with a payload in every module source: weights read, the payload inert."""
    marker = tmp_path / "pwned"
    snapshot = write_snapshot("unconditional", tmp_path / "network-snapshot-000000.pkl", module_src=payload(marker))
    data = load_snapshot(snapshot)
    assert isinstance(data["G_ema"], PersistentObject) and data["G_ema"].class_name == "Generator"
    assert data["G_ema"].source_lines == 4  # the source was there, and discarded unread
    assert "synthesis.b4.const" in data["G_ema"].state_dict()
    assert not marker.exists()


def test_a_crafted_snapshot_is_refused_and_its_source_never_runs(tmp_path, capsys):
    """A snapshot whose networks are a payload class: refused in one line, nothing written, no file appears."""
    marker = tmp_path / "pwned"
    crafted = {"G": persistent("Exploit", {"_modules": {}}, payload(marker))}
    crafted["D"] = crafted["G_ema"] = crafted["G"]
    snapshot = tmp_path / "network-snapshot-000000.pkl"
    snapshot.write_bytes(dumps(crafted))
    out = tmp_path / "model.pt"
    with pytest.raises(SystemExit) as exit_:
        invoke(["import-weights", "stylegan2-ada", str(snapshot), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "G is Exploit, not a stylegan2-ada-pytorch Generator" in err and len(err.splitlines()) == 1
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    "module, name, args",
    [
        ("os", "system", ("touch {marker}",)),
        ("builtins", "exec", ("open({marker!r}, 'w')",)),
        ("builtins", "eval", ("open({marker!r}, 'w')",)),
        ("subprocess", "call", (["touch", "{marker}"],)),
        ("torch.storage", "_load_from_bytes", None),  # torch.save'd storage bytes carrying a code global
    ],
)
def test_globals_outside_the_allowlist_are_refused_before_they_run(tmp_path, capsys, module, name, args):
    marker = str(tmp_path / "pwned")
    if args is None:  # a "storage" whose bytes are a pickle calling os.system: torch's own loader would run it
        inner = dumps(Reduce(_Global("os", "system"), (f"touch {marker}",)))
        evil = Reduce(_Global(module, name), (inner,))
        expected = "holds more than tensor data"
    else:
        filled = tuple(a.format(marker=marker) if isinstance(a, str) else [x.format(marker=marker) for x in a] for a in args)
        evil = Reduce(_Global(module, name), filled)
        expected = f"needs {module}.{name}, which genmodels' restricted unpickler refuses"
    snapshot = tmp_path / "network-snapshot-000000.pkl"
    snapshot.write_bytes(dumps({"training_set_kwargs": {"path": evil}}))
    with pytest.raises(WeightsError, match=expected.replace(".", r"\.")):
        load_snapshot(snapshot)
    with pytest.raises(SystemExit) as exit_:
        invoke(["import-weights", "stylegan2-ada", str(snapshot), "--out", str(tmp_path / "model.pt")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert not os.path.exists(marker) and not (tmp_path / "model.pt").exists()


def test_a_plain_reduce_to_os_system_pickled_by_python_is_refused(tmp_path):
    """The classic exploit, pickled by the standard pickler (not our test writer)."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    snapshot = tmp_path / "evil.pkl"
    snapshot.write_bytes(pickle.dumps({"G_ema": Exploit()}))
    with pytest.raises(WeightsError, match=r"needs (posix|os|nt)\.system"):
        load_snapshot(snapshot)
    assert not marker.exists()


def test_persistent_ids_and_garbage_are_refused(tmp_path):
    class WithId(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if obj == "ref" else None

    import io

    buffer = io.BytesIO()
    WithId(buffer, protocol=4).dump({"G": "ref"})
    (tmp_path / "pid.pkl").write_bytes(buffer.getvalue())
    with pytest.raises(WeightsError, match="persistent ids"):
        load_snapshot(tmp_path / "pid.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(WeightsError, match="not a readable network pickle"):
        load_snapshot(tmp_path / "junk.pkl")


def test_numpy_scalars_become_numbers_and_object_scalars_are_refused(tmp_path):
    import numpy as np

    (tmp_path / "num.pkl").write_bytes(pickle.dumps({"gain": np.float64(1.5), "n": np.int64(3)}))
    loaded = load_snapshot(tmp_path / "num.pkl")
    assert loaded == {"gain": 1.5, "n": 3} and type(loaded["gain"]) is float
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps(np.array([print], dtype=object)))
    with pytest.raises(WeightsError, match="refuses"):
        load_snapshot(tmp_path / "obj.pkl")
