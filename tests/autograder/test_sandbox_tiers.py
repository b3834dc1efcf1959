"""The isolation tiers of autograder/sandbox.py beyond the hostile classes: choosing a tier, the
errors for a tier this machine cannot give, the ``rlimit`` tier's process cap (one kernel's fork
bomb starves neither the grader nor another kernel), ``make grade`` as a normal user, the
``cgroup1`` tier's limits, and the ``cgroup2`` tier's control logic on a temporary directory laid
out like a cgroup v2 tree (this machine's memory and pids controllers sit in cgroup v1
hierarchies: its end-to-end run needs a cgroup v2 host)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradeclass import write_zip
from normaluser import as_user, instructor, user_folder  # noqa: F401 (fixtures)

from autograder import __main__ as cli
from autograder import sandbox

# One xdist group with the other normal-user tests and the hub suite (test_class_on_hub.py).
pytestmark = [pytest.mark.autograder, pytest.mark.xdist_group("hostile")]
ASSIGNMENT = "hw1-backprop"


def test_auto_picks_a_sandboxed_tier_and_says_why_not_a_stronger_one():
    tier = sandbox.choose("auto")
    assert tier.sandboxed and tier.problem() is None
    order = ["cgroup2", "cgroup1", "rlimit"]
    stronger = order[: order.index(tier.name)]
    assert [reason.split(":")[0] for reason in sandbox.weaker_because(tier)] == stronger


def test_auto_never_falls_back_to_none(monkeypatch):
    for tier in (sandbox.Cgroup2, sandbox.Cgroup1, sandbox.Rlimit):
        monkeypatch.setattr(tier, "problem", classmethod(lambda cls: f"no {cls.name} (test)"))
    with pytest.raises(sandbox.SandboxUnavailable) as error:
        sandbox.choose.__wrapped__("auto")
    message = str(error.value)
    assert "no cgroup2 (test)" in message and "no rlimit (test)" in message
    assert "make /usr/bin/bwrap" in message and "\n" not in message


@pytest.mark.parametrize("tier", ["cgroup2", "cgroup1", "rlimit"])
def test_a_tier_this_machine_cannot_give_is_refused_in_one_line(tier, tmp_path, capsys):
    reason = sandbox.ISOLATIONS[tier].problem()
    if reason is None:
        pytest.skip(f"this machine gives {tier}: nothing to refuse")
    archive = write_zip(tmp_path / "c.zip", {"s": b"{}"})
    out = tmp_path / "out"
    assert cli.main(["grade", ASSIGNMENT, str(archive), "--out", str(out), "--sandbox", tier]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and reason in error and f"the {tier} sandbox" in error
    assert not out.exists()


def test_an_unknown_tier_is_refused():
    with pytest.raises(sandbox.SandboxUnavailable, match="unknown sandbox 'cgroup3'"):
        sandbox.choose("cgroup3")


# The rlimit tier's process cap, as a normal user: a kernel holding its limit of processes while
# the grader forks and another kernel of the same user starts processes of its own.
STARVE = """
import subprocess, tempfile
from pathlib import Path
from jupyter_client.blocking import BlockingKernelClient
from autograder.runner import Limits, start_kernel


def client(kernel):
    client = BlockingKernelClient()
    client.load_connection_file(kernel.manager.connection_file)
    client.start_channels()
    return client


limits = Limits(sandbox="rlimit", max_processes=40)
bomb, other = (start_kernel(Path(tempfile.mkdtemp()), "", limits) for _ in range(2))
bomb_client = client(bomb)
bomb_client.execute_interactive('''
import os, time
n = 0
while True:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
print("started", n)
''', output_hook=lambda m: print("bomb", m["content"].get("text", "").strip()), timeout=60)
grader = [subprocess.Popen(["sleep", "5"]) for _ in range(100)]
print("grader forked", len(grader))
client(other).execute_interactive(
    "import subprocess; print(len([subprocess.Popen(['true']) for _ in range(20)]))",
    output_hook=lambda m: print("other", m["content"].get("text", "").strip()), timeout=60,
)
print("bomb limit hit", bomb.isolation.hit_process_limit())
print("other limit hit", other.isolation.hit_process_limit())
for kernel in (bomb, other):
    kernel.shutdown()
for process in grader:
    process.kill()
"""


def test_a_fork_bomb_in_the_rlimit_tier_starves_neither_the_grader_nor_another_kernel(
    instructor,  # noqa: F811
):
    if sandbox.Rlimit.problem() is not None and instructor is None:
        pytest.skip(f"no rlimit tier here: {sandbox.Rlimit.problem()}")
    run = as_user(instructor, [sys.executable, "-c", STARVE])
    assert run.returncode == 0, run.stderr
    lines = set(run.stdout.splitlines())
    # bwrap's init and the kernel's threads count too: the bomb gets the rest of the 40
    bomb = [int(line.split()[2]) for line in lines if line.startswith("bomb started ")]
    assert bomb and 10 < bomb[0] < 40, run.stdout
    assert {"grader forked 100", "other 20"} <= lines
    assert {"bomb limit hit True", "other limit hit False"} <= lines


@pytest.mark.slow
def test_make_grade_grades_the_demo_class_sandboxed_as_a_normal_user(instructor, user_folder):  # noqa: F811
    out = user_folder / "demo"
    # The suite runs in the environment `make test` set up: the venv's stamp is not remade.
    make = ["make", "-o", ".venv/.stamp-runtime", "grade", f"GRADING_DEMO={out}"]
    run = as_user(instructor, make)
    assert run.returncode == 0, run.stdout + run.stderr
    tier = json.loads((out / "run.json").read_text())["sandbox"]
    assert tier == "rlimit" if instructor else tier in ("rlimit", "cgroup2")
    with (out / "grades.csv").open() as handle:
        grades = {row["student"]: row for row in csv.DictReader(handle)}
    assert grades["alice"]["score"] == grades["alice"]["max_score"] == "25"
    assert f"sandbox: {tier}" in run.stdout


def test_a_normal_user_with_a_systemd_session_grades_in_a_delegated_scope(tmp_path, monkeypatch):
    fake = FakeCgroup2Tree(tmp_path / "cg")
    (tmp_path / "bus").touch()
    monkeypatch.setattr(sandbox.os, "getuid", lambda: 1000)
    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(sandbox, "_cgroup2_mount", lambda: fake.root)
    monkeypatch.setattr(sandbox.Cgroup2, "problem", classmethod(lambda cls: "not delegated"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv(sandbox.IN_SCOPE_ENV, raising=False)
    command = ["python", "-m", "autograder", "grade", "hw1-backprop", "class.zip"]
    scope = ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"]
    assert sandbox.delegated_scope(command) == [*scope, *command]
    monkeypatch.setenv(sandbox.IN_SCOPE_ENV, "1")  # the grader in the scope does not ask again
    assert sandbox.delegated_scope(command) is None
    monkeypatch.delenv(sandbox.IN_SCOPE_ENV)
    (fake.root / "cgroup.controllers").write_text("cpu io\n")  # v2 without the controllers
    assert sandbox.delegated_scope(command) is None


class FakeCgroup2Tree:
    """A temporary directory laid out like a delegated cgroup v2: the grader's own cgroup."""

    def __init__(self, root: Path, controllers: str = "cpu io memory pids"):
        self.root = root
        root.mkdir()
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cgroup.subtree_control").write_text("\n")
        (root / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def tier(self) -> type[sandbox.Cgroup2]:
        tree = sandbox.Cgroup2Tree(self.root)
        return type("FakeCgroup2", (sandbox.Cgroup2,), {"tree": classmethod(lambda cls: tree)})


def test_cgroup2_names_the_controllers_it_lacks(tmp_path):
    tree = sandbox.Cgroup2Tree(FakeCgroup2Tree(tmp_path / "cg", "cpu io").root)
    assert "has no memory and pids controller (it has: cpu io)" in tree.problem()
    assert "not a cgroup v2 directory" in sandbox.Cgroup2Tree(tmp_path / "missing").problem()


def test_cgroup2_moves_the_grader_to_a_leaf_and_enables_the_controllers(tmp_path):
    fake = FakeCgroup2Tree(tmp_path / "cg")
    assert sandbox.Cgroup2Tree(fake.root).problem() is None
    fake.tier()(400 << 20, 48)
    assert (fake.root / "grader" / "cgroup.procs").read_text() == str(os.getpid())
    assert (fake.root / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_cgroup2_writes_the_limits_and_runs_the_kernel_in_its_cgroup(tmp_path):
    fake = FakeCgroup2Tree(tmp_path / "cg")
    isolation = fake.tier()(400 << 20, 48)
    assert isolation.path.parent == fake.root
    assert (isolation.path / "memory.max").read_text() == str(400 << 20)
    assert (isolation.path / "memory.swap.max").read_text() == "0"
    assert (isolation.path / "pids.max").read_text() == "48"
    argv, _ = isolation.command(["python", "-m", "ipykernel_launcher"], tmp_path, {})
    join = sandbox.join_cgroups([isolation.path / "cgroup.procs"], [])
    assert argv[: len(join)] == join and f"--fsize={400 << 20}" in argv and "bwrap" in argv
    shell = sandbox.join_cgroups([isolation.path / "cgroup.procs"], ["/bin/sh", "-c", "echo $$"])
    run = subprocess.run(shell, capture_output=True, text=True, check=True)
    # the joining shell wrote its PID into cgroup.procs, then became the command (same PID)
    assert (isolation.path / "cgroup.procs").read_text().split() == [run.stdout.strip()]


def test_cgroup2_reads_oom_kills_and_refused_forks_from_its_event_files(tmp_path):
    isolation = FakeCgroup2Tree(tmp_path / "cg").tier()(400 << 20, 48)
    assert not isolation.out_of_memory() and not isolation.hit_process_limit()
    events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill {}\noom_group_kill 0\n"
    (isolation.path / "memory.events").write_text(events.format(0))
    assert not isolation.out_of_memory()  # memory.max reached, reclaimed, nothing killed
    (isolation.path / "memory.events").write_text(events.format(1))
    assert isolation.out_of_memory()
    (isolation.path / "pids.events").write_text("max 0\n")
    assert not isolation.hit_process_limit()
    (isolation.path / "pids.events").write_text("max 3\n")
    assert isolation.hit_process_limit()


def test_cgroup2_kills_through_cgroup_kill_and_the_procs_list(tmp_path):
    isolation = FakeCgroup2Tree(tmp_path / "cg").tier()(400 << 20, 48)
    (isolation.path / "cgroup.kill").write_text("0")
    stray = subprocess.Popen(["sleep", "60"], start_new_session=True)  # left by the kernel
    (isolation.path / "cgroup.procs").write_text(f"{stray.pid}\n")
    isolation.kill_all()
    assert (isolation.path / "cgroup.kill").read_text() == "1"
    assert stray.wait(timeout=5) == -9
    for leftover in isolation.path.iterdir():  # the real cgroupfs has no files to remove
        leftover.unlink()
    isolation.destroy()
    assert not isolation.path.exists()


def test_the_rlimit_tier_confines_each_kernel_in_its_own_user_namespace(tmp_path):
    isolation = sandbox.Rlimit(400 << 20, 48)
    workdir = tmp_path / "kernel"
    workdir.mkdir()
    argv, env = isolation.command(["python", "-m", "ipykernel_launcher"], workdir, {"A": "1"})
    inner = argv[argv.index("prlimit") :]
    assert "--nproc=48" in inner and f"--as={400 << 20}" in inner  # set inside the namespace
    assert argv.index("--unshare-all") < argv.index("prlimit")
    assert ["--setenv", "MALLOC_ARENA_MAX", "1"] == argv[argv.index("MALLOC_ARENA_MAX") - 1 :][:3]
    assert sandbox.Rlimit.scratch_root() is None  # not /dev/shm: no rlimit caps a tmpfs
    assert env == sandbox.LAUNCH_ENV


def test_cgroup1_caps_memory_and_swap_together():
    """On this machine's real cgroup v1 hierarchies (root): a kernel past its memory cap is
    killed, not swapped out, wherever the kernel accounts for swap."""
    if sandbox.Cgroup1.problem() is not None:
        pytest.skip(f"no cgroup1 tier here: {sandbox.Cgroup1.problem()}")
    isolation = sandbox.Cgroup1(300 << 20, 32)
    try:
        memory = isolation.paths["memory"]
        assert int((memory / "memory.limit_in_bytes").read_text()) == 300 << 20
        if (memory.parent / "memory.memsw.limit_in_bytes").exists():
            assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 300 << 20
        assert (isolation.paths["pids"] / "pids.max").read_text().strip() == "32"
    finally:
        isolation.destroy()
    assert not any(path.exists() for path in isolation.paths.values())
