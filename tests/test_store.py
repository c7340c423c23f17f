"""Continuation-state container and the on-disk session store: exact round trips, refusals, atomic writes."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from ltx2stream.errors import ConfigError, SessionError, StateError
from ltx2stream.session import store as store_mod
from ltx2stream.session.state import SCHEMA_VERSION, SerializedState, read_header
from ltx2stream.session.store import SessionStore, check_session_id, new_session_id

SID = "sessionA_0001"


def _state(index: int = 0, **meta_overrides: object) -> SerializedState:
    g = torch.Generator().manual_seed(index)
    meta = {
        "preset": "ltx2-distilled",
        "width": 768,
        "height": 512,
        "fps": 24.0,
        "segment_index": index,
        "timeline_position": 5.0 * (index + 1),
        "prompt_history": [{"segment": 0, "prompt": "a fox"}],
        "seeds": list(range(index + 1)),
    }
    meta.update(meta_overrides)
    tensors = {
        "video_tail": torch.randn(1, 128, 2, 4, 6, generator=g).to(torch.bfloat16),
        "audio_tail": torch.randn(1, 8, 5, 16, generator=g),
        "rng": torch.randint(0, 255, (16,), dtype=torch.uint8, generator=g),
    }
    return SerializedState(tensors=tensors, meta=meta)


def _state_code(data: bytes) -> str:
    with pytest.raises(StateError) as info:
        SerializedState.from_bytes(data)
    return info.value.code


def _with_header(state: SerializedState, **header_overrides: str) -> bytes:
    """Re-serialise a state with some __metadata__ entries replaced (valid safetensors layout)."""
    data = state.to_bytes()
    header = dict(read_header(data))
    header.update(header_overrides)
    tensors = {k: v.contiguous() for k, v in state.tensors.items()}
    return st_save(tensors, metadata=header)


def test_round_trip_keeps_dtypes_and_bits():
    """bf16/fp32/uint8 tensors and the meta come back bit-exact with their dtypes."""
    s = _state(3)
    back = SerializedState.from_bytes(s.to_bytes())
    assert back.schema_version == SCHEMA_VERSION and back.meta == s.meta and back.segment_index == 3
    for name, t in s.tensors.items():
        assert back.tensors[name].dtype == t.dtype and torch.equal(back.tensors[name], t)
    assert back.checksum.startswith("sha256:")


def test_file_round_trip(tmp_path):
    """save/load through a file equals the bytes path."""
    s = _state(1)
    s.save(tmp_path / "s.ltxstate")
    assert SerializedState.load(tmp_path / "s.ltxstate").meta == s.meta


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:5],
        lambda b: b[: len(b) // 2],
        lambda b: b"\xff" * 8 + b[8:],
        lambda b: b[:8] + b"{not json" + b[17:],
    ],
)
def test_corrupt_bytes_refused(mutate):
    """Truncated bytes, a bogus header length or a non-JSON header are state.corrupt."""
    assert _state_code(mutate(_state().to_bytes())) == "state.corrupt"


def test_flipped_tensor_byte_fails_checksum():
    """One changed byte in the tensor data is caught by the content checksum (state.corrupt)."""
    data = bytearray(_state().to_bytes())
    data[-1] ^= 0xFF
    with pytest.raises(StateError) as info:
        SerializedState.from_bytes(bytes(data))
    assert info.value.code == "state.corrupt" and "checksum" in info.value.message


def test_edited_meta_fails_checksum():
    """Metadata edited after writing (e.g. a different fps) is state.corrupt."""
    s = _state()
    edited = json.loads(read_header(s.to_bytes())["meta"]) | {"fps": 30.0}
    assert _state_code(_with_header(s, meta=json.dumps(edited))) == "state.corrupt"


def test_foreign_safetensors_refused():
    """A plain safetensors file (e.g. a checkpoint) without our marker is state.foreign."""
    assert _state_code(st_save({"w": torch.zeros(2)})) == "state.foreign"
    assert _state_code(st_save({"w": torch.zeros(2)}, metadata={"format": "pt"})) == "state.foreign"


def test_future_and_bad_schema_versions_refused():
    """A newer schema version is state.future_version; a non-numeric one is state.corrupt."""
    s = _state()
    with pytest.raises(StateError) as info:
        SerializedState.from_bytes(_with_header(s, schema_version=str(SCHEMA_VERSION + 1)))
    assert info.value.code == "state.future_version" and str(SCHEMA_VERSION + 1) in info.value.message
    assert _state_code(_with_header(s, schema_version="one")) == "state.corrupt"


def test_missing_meta_key_refused():
    """A state without a required meta key cannot be built (state.corrupt naming the key)."""
    with pytest.raises(StateError, match="fps"):
        _state(fps=None)
    with pytest.raises(StateError, match="width"):
        _state(width=True)


def test_check_compatible():
    """A state for another size or fps is state.incompatible, naming each difference; int 24 == 24.0 fps."""
    s = _state()
    s.check_compatible({"preset": "ltx2-distilled", "width": 768, "height": 512, "fps": 24})
    with pytest.raises(StateError) as info:
        s.check_compatible({"preset": "ltx2-distilled", "width": 1024, "fps": 25.0})
    assert info.value.code == "state.incompatible"
    assert "width: state=768, session=1024" in info.value.message and "fps" in info.value.message


def test_session_ids_refuse_path_traversal(tmp_path):
    """Ids with separators, dots, spaces or wrong length are session.bad_id before any file access."""
    store = SessionStore(tmp_path)
    for bad in (
        "../../etc",
        "..",
        "a/b/c/d/e",
        "/abs/path",
        "short",
        "x" * 65,
        "has space1",
        "dot.dot.dot",
        123,
    ):
        with pytest.raises(SessionError) as info:
            store.load_latest(bad)  # type: ignore[arg-type]
        assert info.value.code == "session.bad_id"
    assert check_session_id(new_session_id())
    assert list(tmp_path.iterdir()) == []


def test_save_load_list_and_keep_last(tmp_path):
    """keep_last=2 keeps the two highest segments; load/load_latest/list agree."""
    store = SessionStore(tmp_path, keep_last=2)
    for i in range(4):
        store.save(SID, i, _state(i))
    assert [s.segment_index for s in store.list(SID)] == [2, 3]
    assert store.load_latest(SID).segment_index == 3
    assert torch.equal(store.load(SID, 2).tensors["video_tail"], _state(2).tensors["video_tail"])
    with pytest.raises(SessionError) as info:
        store.load(SID, 0)
    assert info.value.code == "session.segment_not_found" and "[2, 3]" in info.value.message
    with pytest.raises(SessionError) as info:
        store.load_latest("unknownSess1")
    assert info.value.code == "session.not_found"


def test_rewind_drops_later_segments(tmp_path):
    """Saving segment k removes states above k (they belong to the abandoned timeline)."""
    store = SessionStore(tmp_path, keep_last=5)
    for i in range(4):
        store.save(SID, i, _state(i))
    store.save(SID, 1, _state(1, prompt_history=[]))
    assert [s.segment_index for s in store.list(SID)] == [0, 1]
    assert store.load_latest(SID).meta["prompt_history"] == []


def test_save_bytes_is_verified_first(tmp_path):
    """Uploaded blobs are parsed before writing: foreign/corrupt bytes never reach the disk; indices must match."""
    store = SessionStore(tmp_path)
    with pytest.raises(StateError):
        store.save(SID, 0, st_save({"w": torch.zeros(1)}))
    with pytest.raises(ValueError, match="does not match"):
        store.save(SID, 1, _state(0).to_bytes())
    assert store.list(SID) == []
    assert store.save(SID, 0, _state(0).to_bytes()).segment_index == 0


def test_failed_write_keeps_previous_state(tmp_path, monkeypatch):
    """A write that dies half way leaves the previous state intact and no temp or torn file behind."""
    store = SessionStore(tmp_path)
    store.save(SID, 0, _state(0))
    before = (tmp_path / SID / "seg-00000000.ltxstate").read_bytes()

    def half_then_fail(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod, "_write_all", half_then_fail)
    for index in (0, 1):  # overwrite of the same index, and a new index
        with pytest.raises(SessionError) as info:
            store.save(SID, index, _state(index, prompt_history=[{"segment": index}]))
        assert info.value.code == "store.write_failed"
    assert sorted(p.name for p in (tmp_path / SID).iterdir()) == ["seg-00000000.ltxstate"]
    assert (tmp_path / SID / "seg-00000000.ltxstate").read_bytes() == before
    assert store.load_latest(SID).meta == _state(0).meta


def test_hard_crash_leaves_only_an_invisible_temp(tmp_path, monkeypatch):
    """A crash with no clean-up leaves a temp file that readers ignore and cleanup removes after the grace time."""
    store = SessionStore(tmp_path, temp_grace_s=60)
    store.save(SID, 0, _state(0))

    def crash(fd: int, data: bytes) -> None:
        os.write(fd, data[:100])
        raise KeyboardInterrupt  # stands in for the process dying mid-write

    monkeypatch.setattr(store_mod, "_write_all", crash)
    monkeypatch.setattr(store_mod, "_discard_temp", lambda temp: None)
    with pytest.raises(KeyboardInterrupt):
        store.save(SID, 1, _state(1))
    temps = [p for p in (tmp_path / SID).iterdir() if p.name.startswith(".tmp-")]
    assert len(temps) == 1 and temps[0].stat().st_size == 100
    assert [s.segment_index for s in store.list(SID)] == [0] and store.load_latest(SID).segment_index == 0
    now = temps[0].stat().st_mtime
    assert store.cleanup(now + 30).bytes_freed == 0 and temps[0].exists()
    store.cleanup(now + 61)
    assert not temps[0].exists() and store.load_latest(SID).segment_index == 0


def test_corrupt_file_on_disk_is_reported(tmp_path):
    """A stored file damaged on disk is refused on load with state.corrupt."""
    store = SessionStore(tmp_path)
    info = store.save(SID, 0, _state(0))
    data = bytearray(info.path.read_bytes())
    data[-3] ^= 0x01
    info.path.write_bytes(bytes(data))
    with pytest.raises(StateError) as err:
        store.load_latest(SID)
    assert err.value.code == "state.corrupt"


def _age(store: SessionStore, sid: str, mtime: float) -> None:
    for s in store.list(sid):
        os.utime(s.path, (mtime, mtime))


def test_cleanup_ttl(tmp_path):
    """Sessions whose newest state is older than ttl_s are removed; fresher ones stay."""
    store = SessionStore(tmp_path, ttl_s=100)
    store.save("oldSession1", 0, _state(0))
    store.save("newSession1", 0, _state(0))
    _age(store, "oldSession1", 1000.0)
    _age(store, "newSession1", 1090.0)
    report = store.cleanup(now=1150.0)
    assert report.sessions == ("oldSession1",) and report.files == 1 and report.bytes_freed > 0
    assert store.list("oldSession1") == [] and not (tmp_path / "oldSession1").exists()
    assert len(store.list("newSession1")) == 1


def test_cleanup_total_size_drops_oldest_first(tmp_path):
    """Over max_total_bytes, whole sessions go oldest first until the total fits."""
    size = len(_state(0).to_bytes())
    store = SessionStore(tmp_path, max_total_bytes=2 * size + 10, ttl_s=1e9)
    for t, sid in enumerate(("sessionOne", "sessionTwo", "sessionThree")):
        store.save(sid, 0, _state(0))
        _age(store, sid, 1000.0 + t)
    report = store.cleanup(now=2000.0)
    assert report.sessions == ("sessionOne",)
    assert store.list("sessionTwo") and store.list("sessionThree")


def test_store_header_is_plain_safetensors(tmp_path):
    """The stored file is a normal safetensors file: 8-byte little-endian header length, JSON header."""
    info = SessionStore(tmp_path).save(SID, 0, _state(0))
    raw = info.path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "ltx2stream.continuation"
    assert header["video_tail"]["dtype"] == "BF16"


def test_delete_and_constructor_checks(tmp_path):
    """delete() removes a session's states; bad store bounds and non-tensor values are refused."""
    store = SessionStore(tmp_path)
    store.save(SID, 0, _state(0))
    store.delete(SID)
    assert store.list(SID) == []
    with pytest.raises(ConfigError, match="keep_last") as bounds:
        SessionStore(tmp_path, keep_last=0)
    assert bounds.value.code == "config.out_of_range"
    with pytest.raises(StateError, match="not a tensor"):
        SerializedState(tensors={"x": [1, 2]}, meta=_state().meta)  # type: ignore[dict-item]
    with pytest.raises(StateError, match="not plain JSON"):
        _state(extra=object()).to_bytes()


def test_state_removed_between_list_and_read(tmp_path, monkeypatch):
    """A file that vanishes after list() (concurrent cleanup) is session.segment_not_found, not an OSError."""
    store = SessionStore(tmp_path)
    info = store.save(SID, 0, _state(0))
    listed = store.list(SID)
    info.path.unlink()
    monkeypatch.setattr(store, "list", lambda session_id: listed)
    with pytest.raises(SessionError) as err:
        store.load_latest(SID)
    assert err.value.code == "session.segment_not_found"


def test_foreign_and_future_files_in_the_store_are_refused(tmp_path):
    """A foreign safetensors file or a future-schema state placed in a session directory is refused on load."""
    store = SessionStore(tmp_path)
    directory = tmp_path / SID
    directory.mkdir()
    (directory / "seg-00000000.ltxstate").write_bytes(st_save({"w": torch.zeros(2)}))
    (directory / "seg-00000001.ltxstate").write_bytes(_with_header(_state(1), schema_version="99"))
    with pytest.raises(StateError) as err:
        store.load(SID, 0)
    assert err.value.code == "state.foreign"
    with pytest.raises(StateError) as err:
        store.load_latest(SID)
    assert err.value.code == "state.future_version"
