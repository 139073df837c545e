"""Index, id and list files that are not UTF-8 give one line naming the file (the CLI exits 2), not a traceback;
a UTF-8 byte-order mark (common from Windows editors) is accepted."""

import re

import pytest

from mcja.cli import main
from mcja.data.registry import load_dataset
from mcja.errors import DatasetError


@pytest.mark.parametrize("layout, rel", [("sysu", "exp/test_id.txt"), ("llcm", "idx/test_id.txt"),
                                         ("regdb", "idx/test_thermal_1.txt"), ("llcm", "idx/train_nir.txt")])
def test_latin1_index_file_is_one_line_naming_it(tiny_copy, layout, rel, capsys):
    root = tiny_copy(layout)
    path = root / rel
    path.write_bytes(path.read_bytes() + "# relevé\n".encode("latin-1"))  # é is 0xe9: invalid UTF-8
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        load_dataset(layout, root)
    assert main(["data-info", "--dataset", layout, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "not UTF-8" in err


@pytest.mark.parametrize("layout, rel", [("sysu", "exp/test_id.txt"), ("regdb", "idx/test_thermal_1.txt")])
def test_byte_order_mark_is_accepted(tiny_copy, layout, rel):
    root = tiny_copy(layout)
    before = load_dataset(layout, root)
    path = root / rel
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    after = load_dataset(layout, root)
    assert after.test_infrared == before.test_infrared and after.test_visible == before.test_visible


def test_folder_csv_and_extract_list_not_utf8(tmp_path, capsys):
    csv = tmp_path / "list.csv"
    csv.write_bytes("path,pid,camera,modality\ncafé.jpg,1,1,visible\n".encode("cp1252"))
    with pytest.raises(DatasetError, match=re.escape(str(csv)) + ": not UTF-8 text"):
        load_dataset("folder", csv)
    listing = tmp_path / "images.txt"
    listing.write_bytes("photos/été.jpg\n".encode("latin-1"))
    assert main(["extract", "--checkpoint", str(tmp_path / "unused.pt"), "--list", str(listing),
                 "--out", str(tmp_path / "f.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(listing) in err and "not UTF-8" in err
