"""Downloads report their progress: size, share, rate and time left; the file is checked and moved into place."""

from __future__ import annotations

import hashlib
import io

import pytest

from caltrain.data.files import copy_with_progress, download


def test_copy_reports_every_tenth_and_a_final_line():
    data = bytes(range(256)) * 400  # 102,400 bytes
    lines = []
    clock = iter(range(1000))
    target = io.BytesIO()
    n = copy_with_progress(io.BytesIO(data), target, total=len(data), label="downloading x", chunk=4096,
                           report=lambda text, final: lines.append((text, final)), now=lambda: float(next(clock)))
    assert n == len(data) and target.getvalue() == data
    assert lines[-1][1] and all(not final for _, final in lines[:-1])
    assert 9 <= len(lines) - 1 <= 10  # one line per tenth (the last tenth is the final line)
    assert lines[-1][0].startswith("downloading x: 0.1 MB / 0.1 MB (100%)") and "left" not in lines[-1][0]
    shares = [int(text.split("(")[1].split("%")[0]) for text, _ in lines]
    assert shares == sorted(shares) and "about" in lines[0][0] and "MB/s" in lines[0][0]


def test_copy_without_a_length_reports_bytes_only():
    lines = []
    copy_with_progress(io.BytesIO(b"x" * 5000), io.BytesIO(), total=None, label="y", chunk=1000,
                       report=lambda text, final: lines.append(text))
    assert len(lines) == 1 and lines[0].startswith("y: 0.0 MB, ") and "%" not in lines[0]


def test_download_of_a_file_url_shows_progress_and_checks_the_md5(tmp_path, capsys):
    source = tmp_path / "src.bin"
    payload = b"caltrain" * 50_000
    source.write_bytes(payload)
    dest = tmp_path / "out" / "data.bin"
    download(source.as_uri(), dest, md5=hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    err = capsys.readouterr().err
    assert "downloading data.bin: 0.4 MB / 0.4 MB (100%)" in err
    lines = []
    with pytest.raises(ValueError, match="MD5"):
        download(source.as_uri(), tmp_path / "bad.bin", md5="0" * 32, progress=lambda t, f: lines.append(t))
    assert lines and not (tmp_path / "bad.bin").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bad")] == []  # no temporary file left
