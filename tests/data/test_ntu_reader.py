import numpy as np
import pytest

from modistill.data import ntu, video
from modistill.errors import DataError

BODY = "72057594037931101 0 1 1 1 1 0 -0.4 0.1 2"


def joint_line(i):
    return f"{0.1 * i:.4f} -1.87419E-05 3.5 {200 + i}.5 {150 + i}.25 {900 + 3 * i}.0 {500 + 2 * i}.0 0.9 0 0.1 0 2"


def body_block(body_id="72057594037931101"):
    return [BODY.replace("72057594037931101", body_id), "25"] + [joint_line(i) for i in range(25)]


def write(tmp_path, lines, eol="\r\n", name="S001C002P003R002A013.skeleton"):
    p = tmp_path / name
    p.write_bytes((eol.join(lines) + eol).encode())
    return p


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_parse_crlf_and_lf_with_zero_and_two_bodies(tmp_path, eol):
    lines = ["3", "1", *body_block(), "0", "2", *body_block(), *body_block("72057594037931102")]
    frames = ntu.read_skeleton(write(tmp_path, lines, eol))
    assert [len(f) for f in frames] == [1, 0, 2]
    b = frames[0][0]
    assert b.body_id == 72057594037931101 and isinstance(b.body_id, int)
    assert frames[2][1].body_id == 72057594037931102  # would collide if parsed through float
    assert b.joints.shape == (25, 12)
    assert b.joints[3, 1] == pytest.approx(-1.87419e-05)
    assert b.joints[2, 3] == 202.5 and b.joints[2, 4] == 152.25
    assert b.joints[2, 5] == 906.0 and b.joints[2, 6] == 504.0
    assert b.lean_x == pytest.approx(-0.4) and b.tracking_state == 2


def test_more_than_two_bodies_and_main_body(tmp_path):
    lines = ["2", "3", *body_block("1"), *body_block("2"), *body_block("3"), "1", *body_block("2")]
    frames = ntu.read_skeleton(write(tmp_path, lines))
    assert len(frames[0]) == 3
    main = ntu.main_body(frames)
    assert [b.body_id for b in main] == [2, 2]


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda L: L[:-3], "file ends early"),
        (lambda L: L[:5] + ["1 2 x"] + L[6:], "expected joint line"),
        (lambda L: L[:5] + [L[5].replace("3.5", "abc")] + L[6:], "malformed joint line"),
        (lambda L: L[:3] + ["24"] + L[4:], "expected 25 joints"),
        (lambda L: L + ["1"], "after the last frame"),
    ],
)
def test_garbled_files_name_file_and_line(tmp_path, mutate, where):
    lines = mutate(["1", "1", *body_block()])
    path = write(tmp_path, lines)
    with pytest.raises(DataError) as e:
        ntu.read_skeleton(path)
    assert where in str(e.value) and path.name in str(e.value)
    assert e.value.line is not None


def test_garbled_reports_exact_line(tmp_path):
    lines = ["1", "1", *body_block()]
    lines[10] = lines[10].replace("3.5", "?")
    with pytest.raises(DataError) as e:
        ntu.read_skeleton(write(tmp_path, lines))
    assert e.value.line == 11


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        ntu.read_skeleton(tmp_path / "nope.skeleton")
    p = tmp_path / "bin.skeleton"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="ASCII"):
        ntu.read_skeleton(p)


def test_write_read_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(25, 12)) * 100
    joints[:, 11] = 2
    frames = [[ntu.Body(72057594037931101, 0, 1, 2, 1, 3, 0, 0.5, -0.25, 2, joints)], []]
    p = tmp_path / "x.skeleton"
    ntu.write_skeleton(p, frames)
    assert p.read_bytes().endswith(b"\r\n")
    back = ntu.read_skeleton(p)
    assert back[0][0].body_id == 72057594037931101 and back[1] == []
    np.testing.assert_allclose(back[0][0].joints, joints, rtol=1e-6, atol=1e-5)


def test_parse_name():
    s = ntu.parse_name("S001C002P003R002A013")
    assert (s.setup, s.camera, s.performer, s.replication, s.action, s.label) == (1, 2, 3, 2, 13, 12)
    for bad in ["S001C002P003R002A13", "s001C002P003R002A013", "S001C002P003R002A013_rgb", "S000C002P003R002A013"]:
        with pytest.raises(ValueError, match=bad):
            ntu.parse_name(bad)


def test_evenly_spaced_matches_released_code():
    assert video.evenly_spaced(103, 5).tolist() == [0, 25, 51, 76, 102]
    assert video.evenly_spaced(3, 5).tolist() == [0, 0, 1, 1, 2]
