import shutil

import pytest
from pix2pix_zero_workshop.concepts import build_shipped_concepts

from pix2pix_zero.directions import SHIPPED_CONCEPTS_FOLDER
from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR


@pytest.mark.slow
def test_build_writes_the_shipped_files_for_each_bank(tmp_path):
    """Rebuilt from the same weights and banks, the files have the names (keys) of the shipped ones."""
    copy = tmp_path / "model"
    shutil.copytree(BUNDLED_MODEL_DIR, copy)
    for bank in (copy / "sentences").glob("*.txt"):
        if bank.stem not in ("circle", "red"):
            bank.unlink()
    (copy / SHIPPED_CONCEPTS_FOLDER / "stale-0000000000000000.safetensors").write_bytes(b"old")
    written = build_shipped_concepts(copy)
    assert sorted(p.name for p in (copy / SHIPPED_CONCEPTS_FOLDER).iterdir()) == sorted(p.name for p in written)
    shipped = {p.name for p in (BUNDLED_MODEL_DIR / SHIPPED_CONCEPTS_FOLDER).iterdir()}
    assert len(written) == 2 and {p.name for p in written} <= shipped
