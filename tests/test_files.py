"""The one bounded read of a user's file: what the serve loop refuses, and what a one-shot command still reads."""

import os
import threading

import pytest

from exporter.common.files import FileProblem, read_bounded, read_file


def test_a_command_still_reads_a_pipe_but_never_more_than_its_bound(tmp_path):
    fifo = tmp_path / "list"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("nginx:1\n"))
    writer.start()
    assert read_bounded(fifo, "list") == b"nginx:1\n"  # check --file <(curl ...)
    writer.join()
    with pytest.raises(FileProblem, match="list /dev/zero: larger than 1000 bytes, the most it may hold"):
        read_bounded("/dev/zero", "list", 1000)


def test_a_regular_file_comes_with_its_stat_and_a_directory_is_refused(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("nginx:1\n")
    info, content = read_file(path, 100, regular_only=True)
    assert (content, info.st_size) == (b"nginx:1\n", 8)
    with pytest.raises(FileProblem, match=f"cannot read list {tmp_path}: Is a directory"):
        read_bounded(tmp_path, "list")
