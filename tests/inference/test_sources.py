"""Person ids read from image paths (what `mcja extract` and `mcja search` store for each image)."""

from mcja.inference.sources import pid_from_path


def test_person_ids_from_paths():
    assert pid_from_path("/g/0012/img.jpg") == 12
    assert pid_from_path("/g/x/0012_c3_s1_000151.jpg") == 12
    assert pid_from_path("/g/x/0012.jpg") is None  # a bare number names a frame as often as a person
    assert pid_from_path("/g/0012/a.jpg", root="/g/0012") is None  # the gallery folder itself is no id
    assert pid_from_path("/g/photos/a.jpg") is None
