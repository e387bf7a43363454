"""The fast layer-tarball scanner (reports/tarscan.py) against tarfile, the reference reader."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from buildkit.reports import tarscan
from buildkit.reports.layerfiles import read_tar, read_tar_with_tarfile

LONG = "app/" + "/".join(["deeply-nested-directory-name"] * 6) + "/file.rb"


def layer_tar(fmt: int) -> bytes:
    """A layer with what real layers hold: files, dirs, symlinks, hard links, whiteouts,
    names longer than 100 bytes, non-UTF-8 names, an empty file and a 1 MB one."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8") as archive:

        def add(
            name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("app", tarfile.DIRTYPE)
        add("app/models/user.rb", data=b"class User; end\n")
        add("app/empty", data=b"")
        add("app/big.bin", data=bytes(range(256)) * 4096)
        add(LONG, data=b"x" * 700)
        add("app/link", tarfile.SYMTYPE, link="models/user.rb")
        add("app/longlink", tarfile.SYMTYPE, link=LONG)
        add("app/hard", tarfile.LNKTYPE, link="app/models/user.rb")
        add("app/.wh.old.rb")
        add("app/assets/.wh..wh..opq")
        add("app/caf\udce9.rb", data=b"latin-1 name")
        add("dev/fifo", tarfile.FIFOTYPE)
    return out.getvalue()


FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("compressed", [False, True], ids=["tar", "gzip"])
def test_scan_matches_tarfile(fmt: str, compressed: bool) -> None:
    if fmt == "ustar":  # ustar cannot hold the long name or the non-UTF-8 one: skip those
        data = _without_long_names(layer_tar(tarfile.GNU_FORMAT))
    else:
        data = layer_tar(FORMATS[fmt])
    if compressed:
        data = gzip.compress(data)
    fast = list(tarscan.members(io.BytesIO(data)))  # no fallback: the scanner itself
    assert fast
    expected = read_tar_with_tarfile(io.BytesIO(data))
    assert read_tar(io.BytesIO(data)) == expected
    if fmt != "ustar":
        assert expected.files[f"/{LONG}"] == 700
        assert expected.files["/app/longlink"] == len(LONG)
    assert expected.files["/app/big.bin"] == 1 << 20
    assert expected.deleted == ("/app/old.rb",)
    assert expected.opaque == ("/app/assets",)


def _without_long_names(data: bytes) -> bytes:
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        for member in src:
            if len(member.name) > 100 or len(member.linkname) > 100 or "\udce9" in member.name:
                continue
            archive.addfile(member, src.extractfile(member) if member.isreg() else None)
    return out.getvalue()


def test_unsupported_features_fall_back_to_tarfile() -> None:
    data = bytearray(layer_tar(tarfile.GNU_FORMAT))
    data[148:156] = b"0000000\0"  # break the first header's checksum
    with pytest.raises(tarscan.Unsupported):
        list(tarscan.members(io.BytesIO(bytes(data))))
    truncated = gzip.compress(layer_tar(tarfile.PAX_FORMAT))[:-4000]
    with pytest.raises((tarscan.Unsupported, EOFError, tarfile.TarError)):
        read_tar(io.BytesIO(truncated))  # neither reader invents a layer from half a blob
