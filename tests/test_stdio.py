"""stdout_to_stderr: plugin code prints to stderr; nested, concurrent and failing uses all restore stdout."""
from __future__ import annotations

import sys
import threading

import pytest

from hub.stdio import stdout_to_stderr


def test_prints_inside_go_to_stderr_and_stdout_comes_back(capsys):
    before = sys.stdout
    with stdout_to_stderr():
        print("from a plugin")
        with stdout_to_stderr():
            print("nested")
        print("still inside")
    print("the hub's own")
    assert sys.stdout is before
    out, err = capsys.readouterr()
    assert out == "the hub's own\n" and err == "from a plugin\nnested\nstill inside\n"


def test_an_exception_inside_restores_stdout(capsys):
    before = sys.stdout
    with pytest.raises(RuntimeError):
        with stdout_to_stderr():
            raise RuntimeError("plugin failed")
    assert sys.stdout is before


def test_many_threads_entering_and_leaving_restore_stdout_once_all_are_done(capsys):
    before = sys.stdout
    barrier = threading.Barrier(8)

    def work(n):
        for i in range(200):
            with stdout_to_stderr():
                if i == 0:
                    barrier.wait(10)  # all eight inside at once
                print(f"thread {n}")
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sys.stdout is before
    out, err = capsys.readouterr()
    assert out == "" and err.count("thread ") == 1600


def test_a_stdout_replaced_meanwhile_is_left_as_it_is(capsys):
    import io

    replaced = io.StringIO()
    with stdout_to_stderr():
        sys.stdout = replaced  # e.g. a test runner capturing output
    assert sys.stdout is replaced
    sys.stdout = sys.__stdout__
