"""A fast, read-only walk over the member headers of a (gzipped) layer tarball.

`tarfile` builds a TarInfo object per member, so counting a 9,754-file source layer took 0.73 s
after every push. This reads the 512-byte headers itself (ustar, GNU long names, PAX records)
and skips file data without copying it: 0.35 s for that layer, most of it zlib. Anything it
does not know (sparse files, base-256 sizes, a bad checksum) raises `Unsupported`, and the
caller falls back to `tarfile`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

_BLOCK = 512
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class Unsupported(Exception):
    """A tar feature this scanner does not handle; use tarfile instead."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    type: bytes  # the tar typeflag: b"0" file, b"1" hard link, b"2" symlink, b"5" directory...
    size: int
    linkname: str

    @property
    def is_file(self) -> bool:
        return self.type in (b"0", b"\0", b"7")


class _Stream:
    """Bytes of the (decompressed) blob, consumed front to back."""

    def __init__(self, blob: IO[bytes]) -> None:
        self._blob = blob
        head = blob.read(2)
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if head == _GZIP_MAGIC else None
        self._buf = self._decode(head)
        self._pos = 0

    def _decode(self, data: bytes) -> bytes:
        return self._inflate.decompress(data) if self._inflate is not None else data

    def _fill(self, size: int) -> bool:
        """Make `size` bytes available at the cursor; False at the end of the blob."""
        while len(self._buf) - self._pos < size:
            data = self._blob.read(_CHUNK)
            if not data:
                return False
            self._buf = self._buf[self._pos :] + self._decode(data)
            self._pos = 0
        return True

    def read(self, size: int) -> bytes | None:
        if not self._fill(size):
            return None
        start = self._pos
        self._pos += size
        return self._buf[start : self._pos]

    def skip(self, size: int) -> None:
        while size > 0:
            available = len(self._buf) - self._pos
            if available >= size:
                self._pos += size
                return
            size -= available
            self._buf, self._pos = b"", 0
            data = self._blob.read(_CHUNK)
            if not data:
                raise Unsupported("the tarball ends inside a member")
            self._buf = self._decode(data)


def members(blob: IO[bytes]) -> Iterator[Member]:
    """Every member header of the tarball (gzip or plain), with PAX and GNU names applied."""
    stream = _Stream(blob)
    pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    while (header := stream.read(_BLOCK)) is not None and header.count(0) != _BLOCK:
        _check(header)
        name, typeflag, size, linkname = _fields(header)
        padded = -(-size // _BLOCK) * _BLOCK
        if typeflag in (b"x", b"g", b"L", b"K"):
            data = stream.read(padded)
            if data is None:
                raise Unsupported("the tarball ends inside an extended header")
            if typeflag == b"x":
                pax = _pax(data[:size])
            elif typeflag == b"L":
                long_name = _text(data[:size].rstrip(b"\0"))
            elif typeflag == b"K":
                long_link = _text(data[:size].rstrip(b"\0"))
            continue  # a global header ('g') changes nothing we read
        if typeflag == b"S":
            raise Unsupported("GNU sparse member")
        if "size" in pax:
            size = int(pax["size"])
            padded = -(-size // _BLOCK) * _BLOCK
        yield Member(
            name=pax.get("path") or long_name or name,
            type=typeflag,
            size=size,
            linkname=pax.get("linkpath") or long_link or linkname,
        )
        pax, long_name, long_link = {}, None, None
        stream.skip(padded)


def _fields(header: bytes) -> tuple[str, bytes, int, str]:
    name = header[0:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar" and header[345] != 0:
        name = header[345:500].split(b"\0", 1)[0] + b"/" + name
    raw_size = header[124:136]
    if raw_size[0] & 0x80:
        raise Unsupported("base-256 size field")
    size = int(raw_size.replace(b"\0", b" ").strip() or b"0", 8)
    typeflag = header[156:157]
    linkname = header[157:257].split(b"\0", 1)[0]
    return _text(name), typeflag, size, _text(linkname)


def _check(header: bytes) -> None:
    stored = header[148:156].replace(b"\0", b" ").strip()
    try:
        expected = int(stored or b"-1", 8)
    except ValueError:
        raise Unsupported("unreadable header checksum") from None
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if expected != unsigned:
        raise Unsupported("header checksum mismatch")


def _pax(data: bytes) -> dict[str, str]:
    """PAX records: '<len> <key>=<value>\\n' each."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = _text(value)
        pos += length
    return records


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
