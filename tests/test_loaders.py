"""Every supported file format loads the feature SGLang would be handed, safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_mmhash import FeatureLoadError, hash_feature, load_feature
from pytest_mmhash.loaders import iter_features, iter_paths


def test_pt_tensor_keeps_dtype_and_strides(tmp_path):
    x = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4).t()
    torch.save(x, tmp_path / "x.pt")
    y = load_feature(tmp_path / "x.pt")
    assert y.dtype == torch.bfloat16 and torch.equal(y, x)


def test_pt_list_is_one_item_hashed_as_the_list(tmp_path):
    m = [torch.ones(3), [torch.arange(4)]]
    torch.save(m, tmp_path / "m.pt")
    items = list(iter_features(tmp_path / "m.pt"))
    assert len(items) == 1 and items[0].key is None
    assert (
        hash_feature(items[0].feature, sglang_version="0.5.10").hash
        == hash_feature(m, sglang_version="0.5.10").hash
    )


def test_pt_dict_is_a_container(tmp_path):
    torch.save({"a": torch.ones(2), "b": [torch.zeros(1)], "name": "skip me"}, tmp_path / "d.pt")
    assert [i.key for i in iter_features(tmp_path / "d.pt")] == ["a", "b"]
    assert torch.equal(load_feature(tmp_path / "d.pt", key="a"), torch.ones(2))
    with pytest.raises(FeatureLoadError, match="holds 2 features"):
        load_feature(tmp_path / "d.pt")
    with pytest.raises(FeatureLoadError, match="no entry named 'zz'"):
        load_feature(tmp_path / "d.pt", key="zz")


def test_npy_is_memory_mapped_and_keeps_byte_order(tmp_path):
    a = np.arange(10, dtype=">i2")
    np.save(tmp_path / "a.npy", a)
    b = load_feature(tmp_path / "a.npy")
    assert isinstance(b, np.memmap) and b.dtype == a.dtype and (b == a).all()
    np.save(tmp_path / "e.npy", np.zeros((0, 3), np.float32))
    assert load_feature(tmp_path / "e.npy").shape == (0, 3)


def test_npz_and_safetensors_entries(tmp_path):
    np.savez(tmp_path / "z.npz", first=np.ones(3, np.float32), second=np.arange(2))
    assert [i.key for i in iter_features(tmp_path / "z.npz")] == ["first", "second"]
    from safetensors.torch import save_file

    save_file(
        {"p": torch.ones(2, 3, dtype=torch.bfloat16), "g": torch.tensor([[1, 2, 2]])},
        str(tmp_path / "s.safetensors"),
    )
    items = {i.key: i.feature for i in iter_features(tmp_path / "s.safetensors")}
    assert items["p"].dtype == torch.bfloat16 and items["g"].tolist() == [[1, 2, 2]]


def test_image_is_chw_uint8_with_a_note(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "i.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    (item,) = iter_features(tmp_path / "i.png")
    assert item.feature.shape == (3, 5, 7) and item.feature.dtype == torch.uint8
    assert torch.equal(item.feature, torch.from_numpy(rgb).permute(2, 0, 1))
    assert "not a processor output" in item.note
    assert load_feature(tmp_path / "gray.png").shape == (3, 5, 7)  # converted to RGB


def test_tensor_flag_reads_any_extension(tmp_path):
    torch.save(torch.ones(2), tmp_path / "feature.bin")
    with pytest.raises(FeatureLoadError, match="unsupported file type '.bin'"):
        load_feature(tmp_path / "feature.bin")
    assert torch.equal(load_feature(tmp_path / "feature.bin", as_tensor=True), torch.ones(2))


def test_folders_recursive_sorted_skip_hidden_and_unknown(tmp_path):
    for name in ["b/z.npy", "a.npy", "b/a.npy", ".hidden/x.npy", "notes.txt"]:
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        np.save(p, np.zeros(1)) if name.endswith(".npy") else p.write_text("x")
    rel = [p[len(str(tmp_path)) + 1 :] for p in iter_paths([tmp_path])]
    assert rel == ["a.npy", "b/a.npy", "b/z.npy"]


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(FeatureLoadError, match="refused"):
        load_feature(tmp_path / "evil.pt")
    assert not marker.exists()
