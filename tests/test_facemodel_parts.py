"""ICT's parts (eyes, sockets, teeth, lashes): converter against the shipped ict_parts.npz, loading
beside the head, FaceModel.parts_forward."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backend.facemodel.ict_convert import ICTConvertSettings, convert_ict
from backend.facemodel.parts import load_parts_npz, parts_file_for, save_parts_npz

ICT = Path(__file__).resolve().parents[2] / "shared" / "models" / "ict_facekit"
SAMPLE = ICT / "raw_sample"
EXPS = ["jawOpen", "eyeBlink_L"]


@pytest.fixture(scope="module")
def parts_ref():
    if not (ICT / "ict_parts.npz").exists() or not SAMPLE.exists():
        pytest.skip("ICT parts / raw_sample not present")
    with np.load(ICT / "ict_parts.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def converted(parts_ref):
    return convert_ict(SAMPLE, ICTConvertSettings(n_identity=2, expressions=EXPS))


def test_converted_parts_equal_shipped(converted, parts_ref, tmp_path):
    r = parts_ref
    path = save_parts_npz(converted.parts, tmp_path / "ict_parts.npz")
    with np.load(path) as z:
        got = {k: z[k] for k in z.files}
    names = list(r["exp_names"])
    expected = dict(r, id_basis=r["id_basis"][:2], exp_basis=r["exp_basis"][[names.index(n) for n in EXPS]],
                    exp_names=np.array(EXPS))
    assert set(got) >= set(expected) - {"source"}
    for key, want in expected.items():
        if key == "source":
            continue
        assert got[key].dtype == want.dtype, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)  # bit-identical, not close
    assert str(r["source"]).split(" (")[0] in str(got["source"])


def test_parts_load_beside_head_and_follow_coefficients(converted, tmp_path):
    from backend.facemodel import load_model
    from backend.facemodel.npz import save_npz

    head = save_npz(converted, tmp_path / "ict_head.npz")
    skin_only = load_model(head)
    assert not skin_only.has_parts  # no parts file yet: the skin alone, as before
    save_parts_npz(converted.parts, tmp_path / "ict_parts.npz")
    model = load_model(head)
    assert model.has_parts and model.parts_info.part_names[4] == "teeth"
    assert torch.equal(model.mean, skin_only.mean) and torch.equal(model.faces, skin_only.faces)
    ident = torch.tensor([[0.7, -1.2]])
    exp = torch.tensor([[1.0, 0.0]])  # jawOpen
    parts = model.parts_forward(ident, exp)[0].double()
    # the same coefficients as the skin, through the parts' own bases: compare with the raw OBJs
    from backend.facemodel.objio import read_obj_vertices

    raw = lambda n: read_obj_vertices(SAMPLE / f"{n}.obj")[11248:] * 10.0  # noqa: E731
    want = raw("generic_neutral_mesh") + 0.7 * (raw("identity000") - raw("generic_neutral_mesh")) \
        - 1.2 * (raw("identity001") - raw("generic_neutral_mesh")) + (raw("jawOpen") - raw("generic_neutral_mesh"))
    assert np.abs(parts.numpy() - want).max() < 2e-3  # float16 identity deltas
    teeth = slice(*(model.parts_info.part_vertex_range[4] - 11248))
    closed = model.parts_forward(ident, None)[0]
    assert float((closed[teeth, 1] - parts[teeth, 1].float()).max()) > 5.0  # jawOpen lowers the lower teeth


def test_foreign_parts_file_is_a_clear_error(converted, tmp_path):
    from backend.errors import ModelFormatError
    from backend.facemodel import load_model_data
    from backend.facemodel.npz import save_npz
    from dataclasses import replace

    head = save_npz(converted, tmp_path / "ict_head.npz")
    save_parts_npz(replace(converted.parts, vertex_offset=5000), parts_file_for(head))
    with pytest.raises(ModelFormatError, match="ict_parts.npz: face ids outside"):
        load_model_data(head)
    save_parts_npz(replace(converted.parts, exp_names=["jawOpen", "smile"]), parts_file_for(head))
    with pytest.raises(ModelFormatError, match="lack the skin's expression.*eyeBlink_L"):
        load_model_data(head)
    (tmp_path / "ict_parts.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match="parts"):
        load_model_data(head)


def test_parts_file_name():
    assert parts_file_for("/m/ict_facekit/ict_head.npz") == Path("/m/ict_facekit/ict_parts.npz")
    assert parts_file_for("small.npz") == Path("small_parts.npz")


def test_shipped_parts_load_with_shipped_head(parts_ref):
    from backend.facemodel import load_model

    model = load_model(ICT / "ict_head.npz")
    assert model.has_parts and model.parts_id_basis.shape == (100, 15471, 3)
    assert model.parts_faces.max() == 26718 and model.parts_faces.min() < 11248  # sockets stitched to the skin
    info = load_parts_npz(ICT / "ict_parts.npz")
    assert info.exp_names == model.exp_names
