"""janus sweep: the grid, sweep files, run states, claims and the three executors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from janus.cli import main
from janus.core.errors import ConfigError
from janus.experiments import claims
from janus.experiments.executors import RunJob, SlurmOptions, run_inline, run_local, submit_slurm
from janus.experiments.sweep import (
    FAILURES_NAME,
    Grid,
    SweepRun,
    named_variants,
    read_grid,
    state_of,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data.num_tasks=2", "train.max_steps_per_task=2"]


def small_grid(out: Path, **kw) -> Grid:
    return Grid(runs=["finetune", "janus-lora"], seeds=[0, 1], overrides=list(SMALL),
                out=str(out), **kw)


def matrices(runs: list[SweepRun]) -> dict[str, list]:
    return {r.name: json.loads((r.folder() / "record.json").read_text())["accuracy_matrix"]
            for r in runs}


# --------------------------------------------------------------------------- grid and files


def test_grid_expands_entries_tasks_settings_and_seeds_in_order(tmp_path):
    grid = Grid(runs=["finetune", {"method": "janus-lora", "label": "janus-k5",
                                   "params": {"k": 5}, "seeds": [3]}],
                seeds=[0, 1], tasks=[2, 4], settings={"lr3": ["train.lr=1e-3"]},
                overrides=["train.epochs=1"], out=str(tmp_path))
    runs = grid.expand()
    assert [r.name for r in runs] == [
        "finetune-lr3 seed 0 T=2", "finetune-lr3 seed 1 T=2",
        "finetune-lr3 seed 0 T=4", "finetune-lr3 seed 1 T=4",
        "janus-k5-lr3 seed 3 T=2", "janus-k5-lr3 seed 3 T=4"]
    cfg = runs[-1].config()
    assert (cfg.method.name, cfg.method.params, cfg.method.label) == ("janus-lora", {"k": 5},
                                                                      "janus-k5-lr3")
    assert (cfg.data.num_tasks, cfg.train.epochs, cfg.train.lr, cfg.seed) == (4, 1, 1e-3, 3)
    assert runs[0].folder() == tmp_path / "smoke" / "synthetic-T2" / "finetune-lr3" / "seed0"


def test_named_variants_carry_their_params_and_one_epoch_overrides():
    named = named_variants()
    v = named["janus-union"]
    assert (v.method, v.params, v.overrides) == ("janus-lora", {"memory": "union"}, ())
    v = named["seqlora-e1"]
    assert (v.method, v.overrides) == ("seqlora", ("train.epochs=1",))
    assert named["janus-oe"].params == {"gr": False, "dml": False}  # Table 1 = Fig. 2 row
    run = Grid(runs=["lora-gpm-e1"]).expand()[0]
    assert (run.method, run.label, run.config().train.epochs) == ("lora-gpm", "lora-gpm-e1", 1)


def test_repeated_runs_appear_once_and_clashing_ones_are_an_error():
    assert len(Grid(runs=["finetune", "finetune"]).expand()) == 1
    clash = Grid(runs=["finetune", {"method": "finetune", "overrides": ["train.lr=0.1"]}])
    with pytest.raises(ConfigError, match="would share the folder .* give one a label"):
        clash.expand()


@pytest.mark.parametrize("runs, message", [
    (["no-such-method"], "neither a method nor a named variant"),
    ([{"method": "nope"}], "unknown method 'nope'"),
    ([{"method": "finetune", "lr": 1}], r"unknown keys \['lr'\]"),
    ([{"method": "finetune", "params": [1]}], "params must be a mapping"),
    ([{"method": "finetune", "seeds": [-1]}], "seeds must be a non-empty list"),
    ([{"method": "finetune", "overrides": "train.lr=1"}], "must be a list of key=value"),
    ([3], "must be a method name, a variant name or a mapping"),
])
def test_bad_grid_entries_are_one_clear_error(runs, message):
    with pytest.raises(ConfigError, match=message):
        Grid(runs=runs).expand()


def test_the_evidence_sweep_file_holds_every_method_and_every_variant_once():
    """The committed evidence plan: Table 2's runs (each method with its defaults, SeqLoRA and
    Continual Alternating in one epoch beside the one-epoch control), then the variants of
    Janus Table 1, SD-LoRA Table 4, Fig. 6, Table 5 and memory=union, three seeds each."""
    from janus.experiments.variants import (
        FIG6_VARIANTS,
        ONE_EPOCH,
        SDLORA_TABLE4_VARIANTS,
        SEQLORA_MINI_VARIANTS,
        TABLE1_VARIANTS,
        TABLE5_VARIANTS,
    )
    from janus.methods import METHODS

    grid = read_grid(ROOT / "results" / "evidence-mini.yaml")
    assert (grid.profile, grid.out, grid.seeds) == ("mini", "results", [0, 1, 2])
    runs = grid.expand()
    assert len({r.folder() for r in runs}) == len(runs)
    defaults = {r.method for r in runs if r.label is None}
    assert defaults == set(METHODS) - set(SEQLORA_MINI_VARIANTS)
    one_epoch = {r.key for r in runs if r.config().train.epochs == 1}
    assert one_epoch == {"seqlora-e1", "continual-alternating-e1", "finetune-e1", "lora-gpm-e1",
                         "janus-oe-e1"}
    assert all(r.overrides == ONE_EPOCH for r in runs if r.key in one_epoch)
    for group in (TABLE1_VARIANTS, SDLORA_TABLE4_VARIANTS, FIG6_VARIANTS, TABLE5_VARIANTS):
        assert {v.key for v in group.values()} <= {r.key for r in runs}
    assert "janus-union" in {r.key for r in runs}
    assert all(sorted(r.seed for r in runs if r.key == k) == [0, 1, 2] for k in one_epoch)


def test_read_grid_names_the_file_for_every_problem(tmp_path):
    path = tmp_path / "s.yaml"
    with pytest.raises(ConfigError, match="no sweep file"):
        read_grid(path)
    for text, message in [("runs: [finetune\n", "not valid yaml"),
                          ("- finetune\n", "must be a mapping with a 'runs' list"),
                          ("runs: [finetune]\nseed: [0]\n", r"unknown keys \['seed'\]"),
                          ("runs: []\n", "'runs' must be a non-empty list"),
                          ("runs: [finetune]\nsettings: [a]\n", "'settings' must map"),
                          ("runs: [finetune]\nout: 5\n", "out must be a folder path"),
                          ("runs: [finetune]\nout: [a]\n", "out must be a folder path"),
                          ("runs: [finetune]\nprofile: [a]\n", "unknown profile")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as err:
            read_grid(path).expand()
        assert str(path) in str(err.value) or "folder path" in message or "profile" in message
    path.write_bytes(b"runs: [\xff]\n")
    with pytest.raises(ConfigError, match="not valid yaml"):
        read_grid(path)


def test_read_grid_takes_every_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        profile: smoke
        seeds: [4]
        tasks: 2
        overrides: [train.epochs=1]
        settings: {fast: [train.lr=0.01]}
        out: somewhere
        data_root: /data
        runs: [finetune]
    """))
    grid = read_grid(path)
    assert (grid.seeds, grid.tasks, grid.overrides, grid.settings, grid.out, grid.data_root) == (
        [4], [2], ["train.epochs=1"], {"fast": ["train.lr=0.01"]}, "somewhere", "/data")


# --------------------------------------------------------------------------- claims


def test_a_claim_is_exclusive_and_released_only_by_its_sweep(tmp_path):
    assert claims.claim(tmp_path, claims.claim_info("A", "local"))
    assert claims.claim(tmp_path, claims.claim_info("A", "local"))  # ours already
    assert not claims.claim(tmp_path, claims.claim_info("B", "local"))  # A's process is alive
    claims.release(tmp_path, "B")
    assert claims.read_claim(tmp_path)["sweep"] == "A"
    assert not claims.update(tmp_path, "B", job="1")
    assert claims.update(tmp_path, "A", job="7") and claims.read_claim(tmp_path)["job"] == "7"
    claims.release(tmp_path, "A")
    assert claims.read_claim(tmp_path) is None
    assert claims.claim(tmp_path, claims.claim_info("B", "local"))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_whose_process_died_is_taken_over_and_another_hosts_is_not(tmp_path):
    stale = {**claims.claim_info("A", "local"), "pid": dead_pid()}
    (tmp_path / claims.CLAIM_NAME).write_text(json.dumps(stale))
    assert not claims.owner_alive(stale)
    assert claims.claim(tmp_path, claims.claim_info("B", "local"))
    assert claims.read_claim(tmp_path)["sweep"] == "B"
    elsewhere = {**stale, "host": socket.gethostname() + "-other"}
    (tmp_path / claims.CLAIM_NAME).write_text(json.dumps(elsewhere))
    assert not claims.claim(tmp_path, claims.claim_info("C", "local"))  # cannot tell: kept
    # a live worker keeps a claim whose submitting process has gone
    worker = {**stale, "worker": {"host": socket.gethostname(), "pid": os.getpid()}}
    assert claims.owner_alive(worker)


def test_an_empty_claim_left_by_a_crash_is_taken_over_once_old(tmp_path):
    """A crash between creating and writing the claim used to leave the run "queued (unknown
    on None)" forever (issue 36): such a claim is stale after TAKEOVER_STALE_S."""
    path = tmp_path / claims.CLAIM_NAME
    path.write_text("")
    assert not claims.claim(tmp_path, claims.claim_info("B", "local"))  # being written: kept
    old = time.time() - claims.TAKEOVER_STALE_S - 1
    os.utime(path, (old, old))
    assert not claims.owner_alive(claims.read_claim(tmp_path))
    assert claims.claim(tmp_path, claims.claim_info("B", "local"))
    assert claims.read_claim(tmp_path)["sweep"] == "B"


def fake_squeue(tmp_path: Path, monkeypatch, stdout: str, rc: int = 0, stderr: str = "") -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "squeue"
    script.write_text(f"#!/bin/sh\nprintf '{stdout}'\nprintf '{stderr}' >&2\nexit {rc}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_slurm_claim_lives_as_long_as_squeue_knows_its_job(tmp_path, monkeypatch):
    info = {**claims.claim_info("A", "slurm"), "job": "42_3"}
    fake_squeue(tmp_path, monkeypatch, "RUNNING\\n")
    assert claims.owner_alive(info)
    fake_squeue(tmp_path, monkeypatch, "")
    assert not claims.owner_alive(info)
    fake_squeue(tmp_path, monkeypatch, "", rc=1, stderr="slurm_load_jobs error: Invalid job id")
    assert not claims.owner_alive(info)
    fake_squeue(tmp_path, monkeypatch, "", rc=1, stderr="cannot reach the controller")
    assert claims.owner_alive(info)  # cannot tell: kept


# --------------------------------------------------------------------------- states


def test_state_of_reads_record_claim_and_failure_log(tmp_path):
    run = small_grid(tmp_path).expand()[0]
    assert state_of(run).status == "pending"
    folder = run.folder()
    assert claims.claim(folder, claims.claim_info("A", "local"))
    assert state_of(run).describe().startswith("queued (local on ")
    claims.update(folder, "A", worker={"host": socket.gethostname(), "pid": os.getpid()})
    assert state_of(run).status == "running"
    claims.release(folder, "A")
    (folder / FAILURES_NAME).write_text(json.dumps(
        {"time": "2026-01-01T00:00:00+00:00", "error": "Traceback ...\nOSError: disk"}) + "\n")
    assert state_of(run).describe() == "failed 0/2 tasks (OSError: disk)"
    RunJob("B")  # not claimed by B: the worker refuses to run it
    assert RunJob("B")(run)["status"] == "skipped"
    assert claims.claim(folder, claims.claim_info("B", "inline"))
    outcome = RunJob("B")(run)
    assert outcome["status"] == "complete" and claims.read_claim(folder) is None
    assert state_of(run).status == "complete"
    assert (folder / FAILURES_NAME).read_text().count("\n") == 1  # the failure is kept
    other = Grid(runs=["finetune"], seeds=[0], overrides=[*SMALL, "train.lr=0.5"],
                 out=str(tmp_path)).expand()[0]
    assert state_of(other).status == "conflict"


def test_a_failing_run_is_logged_in_its_folder_and_reported(tmp_path, capsys):
    grid = Grid(runs=["finetune"], profile="mini", out=str(tmp_path),
                data_root=str(tmp_path / "no-data"))
    run = grid.expand()[0]
    reports = []
    run_inline([run], "A", reports.append, progress=False)
    assert reports[0]["status"] == "failed" and "no-data" in reports[0]["detail"]
    log = (run.folder() / FAILURES_NAME).read_text().splitlines()
    assert len(log) == 1 and "no-data" in json.loads(log[0])["error"]
    assert state_of(run).status == "failed" and claims.read_claim(run.folder()) is None


# --------------------------------------------------------------------------- executors


def test_inline_and_cli_sweeps_run_every_run_once_and_reuse_them(tmp_path, capsys):
    args = ["sweep", "--methods", "finetune", "janus-lora", "--seeds", "0", "1", "--out",
            str(tmp_path), "--quiet", *[x for s in SMALL for x in ("--set", s)]]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(": complete (ACC") == 4
    assert main(args + ["--status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[-1] == "4 runs: 4 complete"
    assert main(args) == 0
    assert "4 runs in the grid, 4 complete" in capsys.readouterr().out


def test_bad_sweep_input_is_one_error_before_anything_runs(tmp_path, capsys):
    base = ["sweep", "--out", str(tmp_path)]
    for extra, message in [
        (["--methods", "finetune", "nope"], "neither a method nor a named variant"),
        (["--methods", "finetune", "--set", "method.params.nope=1"], "nope"),
        (["--methods", "finetune", "--set", "train.epochs=0"], "train.epochs=0 is impossible"),
        # typed settings are checked for every run before any is submitted (issue 36)
        (["--methods", "finetune", "--set", "data.batch_size=True"],
         "data.batch_size=True is not int"),
        ([], "needs a sweep file or --methods"),
        ([str(tmp_path / "none.yaml")], "no sweep file"),
        (["--methods", "finetune", "--only", "janus-lora"], "janus-lora not in the grid"),
    ]:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("janus: error: ") and message in err[0], err
    assert not any(tmp_path.rglob("record.json"))


def test_two_sweep_processes_on_one_grid_never_run_the_same_run(tmp_path):
    args = [sys.executable, "-m", "janus.cli", "sweep", "--methods", "finetune", "janus-lora",
            "bilora", "--seeds", "0", "1", "--out", str(tmp_path), "--quiet",
            *[x for s in SMALL for x in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ran = [{line.split(":")[0] for line in out.splitlines() if ": complete (" in line}
           for out in outs]
    assert not ran[0] & ran[1]  # no run trained twice
    assert len(ran[0] | ran[1]) == 6
    runs = Grid(runs=["finetune", "janus-lora", "bilora"], seeds=[0, 1], overrides=list(SMALL),
                out=str(tmp_path)).expand()
    assert all(state_of(r).status == "complete" for r in runs)


def test_local_executor_requeues_a_preempted_worker_and_matches_an_uninterrupted_sweep(
        tmp_path, monkeypatch):
    import janus.experiments.executors as executors

    monkeypatch.setattr(executors, "POLL_S", 0.05)
    longer = ["data.num_tasks=4"]  # a run outlives the 0.05 s between a task and the signal
    runs = Grid(runs=["finetune", "janus-lora"], seeds=[0, 1], overrides=longer,
                out=str(tmp_path / "local")).expand()
    preempted: list[SweepRun] = []

    def preempt_once(active):
        for _, r in active:
            held = claims.read_claim(r.folder())
            if not preempted and held and held.get("worker") and (
                    r.folder() / "record.json").exists():  # one task finished
                os.kill(held["worker"]["pid"], signal.SIGUSR2)  # what Slurm sends on preemption
                preempted.append(r)

    reports = []
    run_local(runs, "S", reports.append, workers=2, folder=tmp_path / "logs",
              watch=preempt_once)
    assert [o["status"] for o in reports] == ["complete"] * 4
    assert preempted
    log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*_log.out"))
    name = preempted[0].name
    starts = [line for line in log.splitlines() if line.startswith(f"{name}: start")]
    assert len(starts) == 2, log
    assert starts[0].endswith("holds 0 finished task(s)")
    assert not starts[1].endswith("holds 0 finished task(s)")  # resumed, not restarted
    reference = Grid(runs=["finetune", "janus-lora"], seeds=[0, 1], overrides=longer,
                     out=str(tmp_path / "inline")).expand()
    run_inline(reference, "R", lambda o: None, progress=False)
    ours, theirs = matrices(runs), matrices(reference)
    assert ours == theirs


def fake_slurm(tmp_path: Path, monkeypatch, sbatch: str) -> None:
    """``sbatch`` running the script ``sbatch`` and an ``srun`` that does nothing, on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("sbatch", sbatch), ("srun", "exit 0\n")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{text}")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_submission_is_one_array_one_run_per_index(tmp_path, monkeypatch):
    from submitit.core.utils import DelayedSubmission

    fake_slurm(tmp_path, monkeypatch,
               f'cp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    runs = small_grid(tmp_path / "out").expand()
    options = SlurmOptions(partition="gpu", time_min=120, gpus=1, cpus=6, mem="32G",
                           max_parallel=2, account="lab", setup=("module load cuda",))
    jobs = submit_slurm(runs, "S", lambda o: None, folder=tmp_path / "logs", options=options)
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(4)]
    script = (tmp_path / "submitted.sh").read_text()
    for line in ["#SBATCH --array=0-3%2", "#SBATCH --partition=gpu", "#SBATCH --time=120",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=6",
                 "#SBATCH --mem=32G", "#SBATCH --account=lab", "#SBATCH --signal=USR2@120",
                 "#SBATCH --job-name=janus-sweep", "module load cuda"]:
        assert line in script.splitlines(), line
    for i, r in enumerate(runs):  # the array index decides the run
        delayed = DelayedSubmission.load(tmp_path / "logs" / f"4242_{i}_submitted.pkl")
        assert delayed.args == (r,) and isinstance(delayed.function, RunJob)
        held = claims.read_claim(r.folder())
        assert (held["sweep"], held["executor"], held["job"]) == ("S", "slurm", f"4242_{i}")
    # a second sweep while the array is queued (squeue knows it) submits nothing
    fake_squeue(tmp_path, monkeypatch, "PENDING\\n")
    reports = []
    assert submit_slurm(runs, "T", reports.append, folder=tmp_path / "logs2",
                        options=options) == []
    assert [o["status"] for o in reports] == ["skipped"] * 4
    assert "slurm job 4242_0" in reports[0]["detail"]


def test_a_failed_sbatch_releases_every_claim(tmp_path, monkeypatch):
    fake_slurm(tmp_path, monkeypatch, "echo 'sbatch: error: invalid partition' >&2\nexit 1\n")
    runs = small_grid(tmp_path / "out").expand()
    with pytest.raises(Exception, match="sbatch failed, nothing was submitted") as err:
        submit_slurm(runs, "S", lambda o: None, folder=tmp_path / "logs",
                     options=SlurmOptions(partition="nope"))
    assert "invalid partition" in str(err.value)
    assert all(claims.read_claim(r.folder()) is None for r in runs)


def test_the_slurm_executor_off_a_cluster_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="needs Slurm's sbatch and srun on PATH"):
        submit_slurm(small_grid(tmp_path).expand(), "S", print, folder=tmp_path,
                     options=SlurmOptions())


def test_local_workers_get_one_gpu_each_and_a_share_of_the_cores(tmp_path, monkeypatch):
    import submitit

    import janus.experiments.executors as executors

    monkeypatch.setattr(executors, "POLL_S", 0.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    submitted = []

    class Done:
        job_id = "1"

        def __init__(self, run):
            self.run = run

        def done(self):
            return True

        def result(self):
            return {"run": self.run.name, "status": "complete", "detail": ""}

    class FakeExecutor:
        def __init__(self, folder):
            self.parameters = {}

        def update_parameters(self, **kw):
            self.parameters = kw

        def submit(self, fn, run):
            submitted.append((run.name, dict(self.parameters)))
            return Done(run)

    monkeypatch.setattr(submitit, "LocalExecutor", FakeExecutor)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    runs = small_grid(tmp_path).expand()
    reports = []
    run_local(runs, "S", reports.append, workers=2, folder=tmp_path, gpus=2)
    assert [o["status"] for o in reports] == ["complete"] * 4
    assert all(p["setup"] == ["export OMP_NUM_THREADS=8"] and p["gpus_per_node"] == 1
               for _, p in submitted)
    assert [p["visible_gpus"] for _, p in submitted] == [[0], [1], [0], [1]]
    submitted.clear()
    run_local(small_grid(tmp_path / "b").expand(), "T", reports.append, workers=3,
              folder=tmp_path, gpus=0)
    assert all(p["visible_gpus"] == [] and p["gpus_per_node"] == 0 and
               p["setup"] == ["export OMP_NUM_THREADS=5"] for _, p in submitted)
    with pytest.raises(ConfigError, match="--workers 0"):
        run_local(runs, "U", print, workers=0, folder=tmp_path, gpus=0)


def test_a_file_system_without_flock_warns_and_runs_unlocked(tmp_path, monkeypatch):
    import errno
    import fcntl

    from janus.train.locking import LockUnavailableWarning, lock_held, run_lock

    def no_flock(handle, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(LockUnavailableWarning, match="no flock"), run_lock(tmp_path / "r"):
        (tmp_path / "r" / "record.json").write_text("{}")
        assert not lock_held(tmp_path / "r")  # cannot tell
    monkeypatch.undo()
    with run_lock(tmp_path / "r"):
        assert lock_held(tmp_path / "r")
    assert not lock_held(tmp_path / "r")
