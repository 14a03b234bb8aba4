"""npz_map.map_npz: the in-place reader of the spectrogram and reference caches."""

from __future__ import annotations

import numpy as np
import pytest

from hourglass_sep.data.npz_map import map_npz
from hourglass_sep.errors import UserError


def test_members_read_in_place_equal_np_load(tmp_path):
    arrays = {
        "c": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "f": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "empty": np.zeros((0, 5), dtype=np.int16),
        "scalar": np.array(3.5),
    }
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    got = map_npz(path)
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].shape == v.shape and got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
        assert not v.size or not got[k].flags.writeable  # views of the read-only map


def test_compressed_and_object_members_are_refused_by_name(tmp_path):
    path = tmp_path / "z.npz"
    np.savez_compressed(path, x=np.ones(100))
    with pytest.raises(UserError, match=r"z\.npz: member x\.npy is compressed; rebuild the cache"):
        map_npz(path, "rebuild the cache")
    obj = tmp_path / "o.npz"
    np.savez(obj, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="member x holds Python objects"):
        map_npz(obj)
