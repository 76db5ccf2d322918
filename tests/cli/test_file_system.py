"""The command line against the file system: failed writes, long names, stop signals.

Failed writes are real: the command runs in a child process whose files may not grow past
a limit (``RLIMIT_FSIZE``, as a full disk stops them), so GDAL's own writes fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.raster_factory import write_raster
from uniadrs_engine.cli.main import (
    EXIT_CANCELLED,
    EXIT_USER_ERROR,
    _stop_signals_as_interrupts,
    main,
)
from uniadrs_engine.raster.writer import (
    MAX_NAME_BYTES,
    WORK_FOLDER_PREFIX,
    stale_owner,
    sweep_stale_temporaries,
    temporary_owner_tag,
    temporary_sibling,
    work_folder,
)

REPOSITORY = Path(__file__).resolve().parents[2]

#: Runs ``uniadrs`` with files limited to ``sys.argv[1]`` bytes.
LIMITED_RUN = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from uniadrs_engine.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _uniadrs(*arguments: str, file_limit: int = 0) -> subprocess.CompletedProcess:
    """Runs the command line in a child process (with files limited when asked)."""
    script = (
        LIMITED_RUN
        if file_limit
        else "import sys\nfrom uniadrs_engine.cli.main import main\nsys.exit(main(sys.argv[2:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(file_limit), *arguments],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def noisy_scene(tmp_path: Path) -> Path:
    """A 3-band 300x300 float32 raster of noise, whose scores compress badly."""
    image = np.random.default_rng(0).random((3, 300, 300)).astype(np.float32)
    return write_raster(tmp_path / "scene.tif", image)


@pytest.mark.parametrize(
    "command",
    [
        ["rx", "{scene}", "{out}/rx.tif"],
        ["threshold", "{scene}", "--top-percent", "30", "--mask", "{out}/mask.tif"],
        ["threshold", "{scene}", "--top-percent", "30", "--polygons", "{out}/objects.gpkg"],
    ],
)
def test_a_write_that_fails_is_one_line_and_leaves_nothing(noisy_scene, tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    arguments = [item.format(scene=noisy_scene, out=out) for item in command]
    result = _uniadrs(*arguments, "--quiet", file_limit=8_000)
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    assert result.stderr.startswith("uniadrs: error: cannot write ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(out.iterdir()) == []  # no output, complete or not, and no work file


def test_a_roc_plot_that_cannot_be_written_is_one_line(tmp_path):
    scores = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    truth = (np.arange(1600).reshape(40, 40) % 7 == 0).astype(np.uint8)
    score_path = write_raster(tmp_path / "scores.tif", scores)
    truth_path = write_raster(tmp_path / "truth.tif", truth)
    out = tmp_path / "out"
    out.mkdir()
    result = _uniadrs(
        "evaluate",
        str(score_path),
        str(truth_path),
        "--roc-png",
        str(out / "roc.png"),
        "--quiet",
        file_limit=2_000,
    )
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    assert result.stderr.startswith("uniadrs: error: cannot write ")
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


def test_long_output_names_work_up_to_the_file_system_limit(tmp_path, capsys):
    image = np.random.default_rng(2).random((3, 30, 30)).astype(np.float32)
    scene = write_raster(tmp_path / "scene.tif", image)
    longest = tmp_path / ("a" * 251 + ".tif")  # 255 bytes: the temporary names are shortened
    assert main(["rx", str(scene), str(longest), "--quiet"]) == 0
    assert longest.exists()
    too_long = tmp_path / ("b" * 252 + ".tif")
    assert main(["rx", str(scene), str(too_long), "--quiet"]) == EXIT_USER_ERROR
    assert "the output file name is 256 bytes long" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == [longest.name, "scene.tif"]


def test_a_stop_signal_cleans_up_like_ctrl_c(tmp_path):
    image = np.random.default_rng(3).random((6, 700, 700)).astype(np.float32)
    scene = write_raster(tmp_path / "scene.tif", image)
    out = tmp_path / "out"
    out.mkdir()
    script = "import sys\nfrom uniadrs_engine.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            "rx",
            str(scene),
            str(out / "rx.tif"),
            "--mode",
            "local",
            "--inner",
            "7",
            "--outer",
            "41",
            "--quiet",
        ],
        cwd=REPOSITORY,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(out.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the output's temporary file exists
    assert process.poll() is None, "the run ended before it could be stopped"
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_CANCELLED, err
    assert "uniadrs: interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["rx", "threshold"])
def test_what_a_killed_run_left_is_deleted_by_the_next_run(tmp_path, command):
    """``kill -9`` leaves a run no time to clean up: its temporary files (or threshold's work
    folder) stay. The next run writing into that folder deletes them, and only them."""
    image = np.random.default_rng(3).random((6, 700, 700)).astype(np.float32)
    scene = write_raster(tmp_path / "scene.tif", image)
    out = tmp_path / "out"
    out.mkdir()
    user_file = out / ".notes.partial.txt"  # not one of ours: never touched
    user_file.write_text("mine")
    arguments = {
        "rx": ["rx", str(scene), str(out / "rx.tif"), "--mode", "local", "--outer", "41"],
        "threshold": [
            "threshold",
            str(scene),
            "--top-percent",
            "30",
            "--polygons",
            str(out / "o.gpkg"),
        ],
    }[command]
    script = "import sys\nfrom uniadrs_engine.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", script, *arguments, "--quiet"],
        cwd=REPOSITORY,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(list(out.iterdir())) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the run's temporary file or work folder exists
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    left = sorted(path.name for path in out.iterdir() if path != user_file)
    assert left and all(name.startswith(".") for name in left)
    prefix = (
        f"{WORK_FOLDER_PREFIX}threshold-{process.pid}-"
        if command == "threshold"
        else f".rx.{process.pid}-"
    )
    assert any(name.startswith(prefix) for name in left), left

    scores = write_raster(tmp_path / "scores.tif", image[:1, :50, :50])
    assert _uniadrs("rx", str(scores), str(out / "next.tif"), "--quiet").returncode == 0
    assert sorted(path.name for path in out.iterdir()) == sorted([user_file.name, "next.tif"])
    assert user_file.read_text() == "mine"


def test_only_temporaries_of_dead_processes_here_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = temporary_owner_tag()
    here = tag.split("-")[1]
    other_host = "0" * 16 if here != "0" * 16 else "1" * 16
    names = {
        f".scores.{dead.pid}-{here}.0123abcd.partial.tif": True,
        f".scores.{dead.pid}-{here}.0123abcd.partial.tif.aux.xml": True,
        f"{WORK_FOLDER_PREFIX}simulate-{dead.pid}-{here}.x1y2z3": True,
        f"{WORK_FOLDER_PREFIX}threshold-{os.getpid()}-{here}.x1y2z3": False,
        f".scores.{os.getpid()}-{here}.0123abcd.partial.tif": False,  # alive: this process
        f".scores.{dead.pid}-{other_host}.0123abcd.partial.tif": False,  # another machine
        ".scores.0123abcd.partial.tif": False,  # the old naming: no owner to ask
        f".report.{dead.pid}-{here}.0123abcd.partial": True,  # an output without an ending
        f"{WORK_FOLDER_PREFIX}benchmark-{dead.pid}-{here}.x1y2z3": True,
        f".scores.3000000000-{here}.0123abcd.partial.tif": False,  # no process id: not ours
        f".scores.4194305-{here}.0123abcd.partial.tif": False,
        "scores.tif": False,
    }
    for name in names:
        if name.startswith(WORK_FOLDER_PREFIX):
            (tmp_path / name).mkdir()
            (tmp_path / name / "objects.gpkg").write_bytes(b"x")
        else:
            (tmp_path / name).write_bytes(b"x")
    assert [stale_owner(name) for name in names] == list(names.values())
    removed = sweep_stale_temporaries(tmp_path)
    assert sorted(path.name for path in removed) == sorted(n for n, s in names.items() if s)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        n for n, s in names.items() if not s
    )
    # Labels the names cannot carry are refused, so that nothing is left that is never swept.
    for bad in ("scale_2", "Partial", ""):
        with pytest.raises(ValueError, match="label"), work_folder(tmp_path, bad):
            pass
        with pytest.raises(ValueError, match="label"):
            temporary_sibling(tmp_path / "x.tif", ".tif", bad)
    # A new temporary name, or work folder, sweeps its folder first.
    (tmp_path / f".old.{dead.pid}-{here}.0123abcd.partial.tif").write_bytes(b"x")
    with work_folder(tmp_path, "simulate") as work:
        assert work.name.startswith(f"{WORK_FOLDER_PREFIX}simulate-{tag}.") and work.is_dir()
        assert stale_owner(work.name) is False  # this process's: alive
        assert not (tmp_path / f".old.{dead.pid}-{here}.0123abcd.partial.tif").exists()
        (work / "objects.gpkg").write_bytes(b"x")
    assert not work.exists()
    (tmp_path / f".other.{dead.pid}-{here}.0123abcd.partial.tif").write_bytes(b"x")
    assert temporary_sibling(tmp_path / "new.tif", ".tif").name.startswith(f".new.{tag}.")
    assert not (tmp_path / f".other.{dead.pid}-{here}.0123abcd.partial.tif").exists()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_a_signal_ignored_at_start_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts a command
    try:
        with _stop_signals_as_interrupts():
            os.kill(os.getpid(), signal.SIGHUP)  # must not stop the run
            time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            with _stop_signals_as_interrupts():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(1.0)
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_names_that_are_not_utf8_get_temporary_names():
    name = os.fsdecode(b"caf\xe9_" + b"x" * 250 + b".tif")  # a Latin-1 name, 255 bytes
    temporary = temporary_sibling(name, ".tif")
    assert len(os.fsencode(temporary.name)) <= MAX_NAME_BYTES
    assert temporary.name.startswith(".caf")


def test_temporary_names_keep_short_stems_whole():
    assert temporary_sibling("out/résumé_été.tif", ".tif").name.startswith(".résumé_été.")
    long = "é" * 130 + ".tif"  # 264 bytes: shortened, on a character boundary
    name = temporary_sibling(long, ".tif").name
    assert len(os.fsencode(name)) <= MAX_NAME_BYTES and name.startswith(".éé")
    name.encode("utf-8")  # no half character left


def test_simulation_on_a_full_disk_is_one_line(tmp_path):
    backgrounds = tmp_path / "backgrounds"
    backgrounds.mkdir()
    image = np.random.default_rng(8).random((3, 96, 96)).astype(np.float32)
    write_raster(backgrounds / "scene.tif", image)
    out = tmp_path / "samples"
    result = _uniadrs(
        "simulate", str(backgrounds), str(out), "-n", "4", "--size", "64", file_limit=20_000
    )
    assert result.returncode == EXIT_USER_ERROR, result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("uniadrs: error: cannot write ") and "too large" in last_line
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(path.suffix == ".tif" for path in out.rglob("*"))


def test_a_checkpoint_that_cannot_be_written_is_a_training_error(tmp_path):
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))\n"
        "import torch\n"
        "from uniadrs_engine.errors import TrainingError\n"
        "from uniadrs_engine.training.checkpoint import save_checkpoint\n"
        "try:\n"
        "    save_checkpoint(Path(sys.argv[1]), {'step': 1, 'w': torch.zeros(100_000)})\n"
        "except TrainingError as error:\n"
        "    print(error)\n"
    )
    target = tmp_path / "run" / "checkpoint.pt"
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.startswith(f"cannot write {target}: "), result.stdout + result.stderr
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_an_output_path_through_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "x.tif"
    blocker.write_bytes(b"a file, not a folder")
    assert main(["split", "default", str(blocker / "members")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("uniadrs: error: ") and err.count("\n") == 1


def test_a_stop_just_after_the_work_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C (or a stop signal) arriving as soon as the folder exists, before the caller's
    block holds it."""
    made = []

    def interrupted_mkdir(path, *args, **kwargs):
        os_mkdir(path, *args, **kwargs)
        made.append(path)
        raise KeyboardInterrupt

    os_mkdir = os.mkdir
    monkeypatch.setattr(os, "mkdir", interrupted_mkdir)
    with pytest.raises(KeyboardInterrupt), work_folder(tmp_path, "threshold"):
        pass  # never reached
    assert made and list(tmp_path.iterdir()) == []
