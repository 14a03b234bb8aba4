"""A throw-away single-node SLURM cluster on 127.0.0.1, for tests.

    with local_slurm_cluster(tmp_path / "slurm") as info:
        result = run_workflow_on_slurm(workdir, "Snakefile", "config.yaml", cluster=info)

What it does (see docs/slurm.md, "The test cluster"):

* checks for ``slurmctld``, ``slurmd``, ``munged``, ``sbatch``; when one is missing and we are root
  with ``apt-get``, installs Debian's ``slurm-wlm munge`` (``apt-get update`` only if the install
  fails without it); otherwise raises :class:`SlurmUnavailable` (a test turns it into a skip);
* writes ``slurm.conf`` (and an empty ``gres.conf``: no GPUs) into ``workdir`` -- never into
  ``/etc/slurm`` -- and points every SLURM command at it through ``SLURM_CONF`` in ``os.environ``
  for the duration (restored on exit).  Ports are picked free, state/log/pid files live in
  ``workdir``, ``SlurmUser=root``, no accounting, no cgroups;
* reuses a running ``munged`` (one that answers ``munge -n``) or starts one as the ``munge`` user;
* starts ``slurmctld -D`` and ``slurmd -D`` in the background, keeps their PIDs, waits until
  ``sinfo`` shows the node idle (on timeout the error carries the daemons' logs);
* on exit cancels the jobs left in *this* cluster, then stops every daemon it started, by PID
  (SIGTERM, then SIGKILL), and nothing else.

Only the standard library and PyYAML are used, so the module can also be run by hand:
``python tests/slurm_cluster.py start DIR`` keeps a cluster up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm"

#: Programs the cluster needs (daemons and the client that Snakemake's plugin calls).
REQUIRED_PROGRAMS = (
    "slurmctld",
    "slurmd",
    "munged",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "munge",
)
APT_PACKAGES = ("slurm-wlm", "munge")
# Debian installs the daemons in /usr/sbin, which is not on every PATH (e.g. a non-root shell).
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
# snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable, SLURM_CONF too,
# before the `srun` it runs inside each job; without SLURM_CONF that srun looks for
# /etc/slurm/slurm.conf (absent here, or another cluster's) and fails with "Could not establish a
# configuration source".  The test cluster's bin/srun puts SLURM_CONF back from this variable.
SRUN_SHIM_VAR = "HG_TEST_SLURM_CONF"


class SlurmUnavailable(RuntimeError):
    """The local cluster cannot be had here (missing packages and no way to install them, ...).

    Tests should ``pytest.skip(str(exc))``.
    """


class SlurmClusterError(RuntimeError):
    """The cluster was set up but did not come up (the message carries the daemons' logs)."""


@dataclasses.dataclass
class ClusterInfo:
    workdir: Path
    conf: Path  # slurm.conf (SLURM_CONF points here while the cluster is up)
    cluster_name: str
    node: str
    partition: str
    cpus: int
    real_memory_mb: int
    slurmctld_port: int
    slurmd_port: int
    slurmctld_log: Path
    slurmd_log: Path
    spool: Path
    pids: dict[str, int]  # daemons this cluster started (name -> PID)
    reused_munged: bool
    startup_seconds: float = 0.0

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for subprocesses that talk to this cluster.

        Besides SLURM_CONF it puts ``workdir/bin`` (the srun shim, see _write_srun_shim) first on
        PATH and the config path also in SRUN_SHIM_VAR, which the jobs inherit (--export=ALL).
        """
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env[SRUN_SHIM_VAR] = str(self.conf)
        env["PATH"] = os.pathsep.join(
            [str(self.workdir / "bin"), _path_with_sbin(env.get("PATH", ""))]
        )
        return env

    def logs(self, tail: int = 60) -> str:
        return _daemon_logs(self.workdir, tail)


# --------------------------------------------------------------------------- discovery / install


def _path_with_sbin(path: str) -> str:
    parts = [p for p in path.split(os.pathsep) if p]
    for extra in _EXTRA_PATH:
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def which(program: str) -> str | None:
    return shutil.which(program, path=_path_with_sbin(os.environ.get("PATH", "")))


def missing_programs() -> list[str]:
    return [p for p in REQUIRED_PROGRAMS if which(p) is None]


def ensure_slurm_installed(*, install: bool = True, timeout: float = 600) -> None:
    """Make sure the SLURM and munge programs exist; install them with apt-get as root if allowed.

    Raises SlurmUnavailable with the reason when they are missing and cannot be installed.
    """
    missing = missing_programs()
    if not missing:
        return
    reason = f"SLURM programs missing: {', '.join(missing)}"
    if not install:
        raise SlurmUnavailable(f"{reason} (installing was not allowed)")
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            f"{reason}; not root, so cannot apt-get install {' '.join(APT_PACKAGES)}"
        )
    apt = which("apt-get")
    if apt is None:
        raise SlurmUnavailable(f"{reason}; no apt-get to install {' '.join(APT_PACKAGES)} with")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if first.returncode != 0:
        update = subprocess.run(
            [apt, "update", "-q"], env=env, capture_output=True, text=True, timeout=timeout
        )
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if second.returncode != 0:
            raise SlurmUnavailable(
                f"{reason}; `{' '.join(cmd)}` failed "
                f"(also after apt-get update, rc={update.returncode}):\n"
                + _tail(second.stdout + second.stderr, 30)
            )
    still = missing_programs()
    if still:
        raise SlurmUnavailable(
            f"apt-get installed {' '.join(APT_PACKAGES)} but these are still missing: {still}"
        )


# --------------------------------------------------------------------------- helpers


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _total_memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 2048


def _short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def _daemon_logs(workdir: Path, tail: int = 60) -> str:
    out = []
    for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out", "munged.out"):
        p = Path(workdir) / name
        if p.exists():
            text = p.read_text(errors="replace").strip()
            if text:
                out.append(f"--- {p} (last {tail} lines)\n{_tail(text, tail)}")
    return "\n".join(out) or f"(no daemon logs in {workdir})"


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, wait, SIGKILL one daemon that we started (by its PID, via its Popen)."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- munge


def munge_works(env: dict[str, str] | None = None) -> bool:
    munge = which("munge")
    if munge is None:
        return False
    try:
        r = subprocess.run([munge, "-n"], capture_output=True, timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _start_munged(workdir: Path) -> subprocess.Popen:
    """Start munged in the foreground as the munge user."""
    try:
        pw = pwd.getpwnam("munge")
    except KeyError as exc:
        raise SlurmUnavailable(
            "the munge package is installed but there is no 'munge' user"
        ) from exc
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        # Debian's postinst normally creates it; make one like `mungekey` would.
        if os.geteuid() != 0:
            raise SlurmUnavailable(f"{key} is missing and we are not root")
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
        os.chown(key, pw.pw_uid, pw.pw_gid)
        key.chmod(0o400)
    for d in ("/run/munge", "/var/lib/munge", "/var/log/munge"):
        p = Path(d)
        p.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    Path("/run/munge").chmod(0o755)
    out = open(workdir / "munged.out", "ab")
    kwargs = {}
    if os.geteuid() == 0:
        kwargs = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    proc = subprocess.Popen(
        [which("munged"), "--foreground", "--force"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **kwargs,
    )
    out.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if munge_works():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _stop(proc)
    raise SlurmClusterError("munged did not come up:\n" + _daemon_logs(workdir))


# --------------------------------------------------------------------------- slurm.conf


def write_slurm_conf(
    workdir: Path,
    *,
    cluster_name: str = "hgtest",
    node: str | None = None,
    cpus: int | None = None,
    real_memory_mb: int | None = None,
    partition: str = "debug",
    ports: Sequence[int] | None = None,
) -> ClusterInfo:
    """Write slurm.conf + gres.conf into workdir (created) and return the matching ClusterInfo."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "state").mkdir(exist_ok=True)
    spool = workdir / "spool"
    if len(str(spool)) > 60:
        # slurmd puts Unix sockets (<spool>/<node>_<job>.<step>, at most 107 bytes) in here
        spool = Path(tempfile.mkdtemp(prefix="hgslurm-spool-"))
        (workdir / "spool").write_text(f"spool dir moved to {spool} (path length)\n")
    spool.mkdir(exist_ok=True)
    node = node or _short_hostname()
    cpus = cpus or os.cpu_count() or 1
    if real_memory_mb is None:
        total = _total_memory_mb()
        real_memory_mb = max(256, min(total - 512, int(total * 0.9)))
    ctld_port, d_port = ports or _free_ports(2)
    conf = workdir / "slurm.conf"
    node_line = (
        f"NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} CPUs={cpus} "
        f"RealMemory={real_memory_mb} State=UNKNOWN"
    )
    text = f"""\
# Throw-away single-node cluster written by tests/slurm_cluster.py; not for production.
ClusterName={cluster_name}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={workdir}/state
SlurmdSpoolDir={spool}
SlurmctldPidFile={workdir}/slurmctld.pid
SlurmdPidFile={workdir}/slurmd.pid
SlurmctldLogFile={workdir}/slurmctld.log
SlurmdLogFile={workdir}/slurmd.log
SlurmctldDebug=info
MpiDefault=none
SlurmdDebug=info
# no cgroups, no systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobContainerType=job_container/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# no slurmdbd: no accounting; the Snakemake plugin must poll with squeue
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue/scontrol for 10 minutes
# (>= 3 x the plugin's first status delay)
MinJobAge=600
ReturnToService=2
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
# a node whose hardware differs from the line below is not drained
SlurmdParameters=config_overrides
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
{node_line}
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
    conf.write_text(text)
    _write_srun_shim(workdir / "bin")
    # GresTypes=gpu lets `sbatch --gpus=...` be parsed (and then refused: no node has one)
    # instead of failing on an unknown GRES; the node has none, so gres.conf stays empty.
    (workdir / "gres.conf").write_text("# no GPUs on this test node\n")
    return ClusterInfo(
        workdir=workdir,
        conf=conf,
        cluster_name=cluster_name,
        node=node,
        partition=partition,
        cpus=cpus,
        real_memory_mb=real_memory_mb,
        slurmctld_port=ctld_port,
        slurmd_port=d_port,
        slurmctld_log=workdir / "slurmctld.log",
        slurmd_log=workdir / "slurmd.log",
        spool=spool,
        pids={},
        reused_munged=False,
    )


def _write_srun_shim(bindir: Path) -> Path:
    real = which("srun") or "/usr/bin/srun"
    bindir.mkdir(parents=True, exist_ok=True)
    shim = bindir / "srun"
    shim.write_text(
        "#!/bin/sh\n"
        "# written by tests/slurm_cluster.py: the Snakemake SLURM jobstep plugin drops SLURM_CONF\n"
        "# before calling srun inside a job; put it back for the local test cluster.\n"
        f'if [ -n "${{{SRUN_SHIM_VAR}:-}}" ]; then '
        f'SLURM_CONF="${SRUN_SHIM_VAR}"; export SLURM_CONF; fi\n'
        f'exec {real} "$@"\n'
    )
    shim.chmod(0o755)
    return shim


# --------------------------------------------------------------------------- the cluster


def _node_state(env: dict[str, str]) -> str:
    r = subprocess.run(
        [which("sinfo"), "-h", "-N", "-o", "%N %t"],
        capture_output=True,
        text=True,
        timeout=15,
        env=env,
    )
    return (r.stdout + r.stderr).strip()


def _cancel_our_jobs(info: ClusterInfo, env: dict[str, str], wait: float = 15.0) -> None:
    """scancel whatever is still queued/running in *this* cluster (SLURM_CONF = ours)."""
    squeue, scancel = which("squeue"), which("scancel")
    if not squeue or not scancel:
        return
    try:
        r = subprocess.run(
            [squeue, "-h", "-t", "PD,R,CG,S,CF", "-o", "%i"],
            capture_output=True,
            text=True,
            timeout=15,
            env=env,
        )
        ids = r.stdout.split()
        if not ids:
            return
        subprocess.run([scancel, *ids], capture_output=True, timeout=15, env=env)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            r = subprocess.run(
                [squeue, "-h", "-t", "PD,R,CG,S,CF", "-o", "%i"],
                capture_output=True,
                text=True,
                timeout=15,
                env=env,
            )
            if not r.stdout.split():
                return
            time.sleep(0.5)
    except (OSError, subprocess.TimeoutExpired):
        pass


@contextlib.contextmanager
def local_slurm_cluster(
    workdir: str | os.PathLike,
    *,
    install: bool = True,
    timeout: float = 60.0,
    cpus: int | None = None,
    real_memory_mb: int | None = None,
) -> Iterator[ClusterInfo]:
    """Start a single-node SLURM cluster with its files in ``workdir``; stop it on exit.

    ``cpus`` defaults to the number of CPUs (``os.cpu_count()``); a larger value over-subscribes the
    machine, which lets a test submit jobs that ask for more threads than it has.
    Raises SlurmUnavailable (skip) when SLURM cannot be had, SlurmClusterError when it does not
    start.
    """
    t0 = time.monotonic()
    if sys.platform != "linux":
        raise SlurmUnavailable("the local SLURM cluster needs Linux")
    ensure_slurm_installed(install=install)
    if os.geteuid() != 0:
        # slurmd must run as root to start jobs as their users
        raise SlurmUnavailable("starting slurmd needs root")
    info = write_slurm_conf(workdir, cpus=cpus, real_memory_mb=real_memory_mb)
    env = info.env()
    old_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(info.conf)
    started: list[tuple[str, subprocess.Popen]] = []
    try:
        if munge_works(env):
            info.reused_munged = True
        else:
            proc = _start_munged(info.workdir)
            info.pids["munged"] = proc.pid
            started.append(("munged", proc))
        for daemon, args in (
            ("slurmctld", ["-D", "-c", "-i"]),
            ("slurmd", ["-D", "-N", info.node]),
        ):
            out = open(info.workdir / f"{daemon}.out", "ab")
            proc = subprocess.Popen(
                [which(daemon), *args, "-f", str(info.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            out.close()
            info.pids[daemon] = proc.pid
            started.append((daemon, proc))
        deadline = time.monotonic() + timeout
        state = ""
        while True:
            for name, proc in started:
                if proc.poll() is not None:
                    raise SlurmClusterError(
                        f"{name} (pid {proc.pid}) exited with {proc.returncode} "
                        f"during start-up:\n{info.logs()}"
                    )
            state = _node_state(env)
            m = re.match(rf"^{re.escape(info.node)}\s+(\S+)$", state)
            if m and m.group(1) in ("idle", "mix", "alloc"):
                break
            if (
                m
                and m.group(1).startswith(("drain", "down", "fail"))
                and time.monotonic() > deadline - timeout / 2
            ):
                reason = subprocess.run(
                    [which("sinfo"), "-R"], capture_output=True, text=True, env=env
                ).stdout
                raise SlurmClusterError(
                    f"node {info.node} is {m.group(1)}: {reason}\n{info.logs()}"
                )
            if time.monotonic() > deadline:
                raise SlurmClusterError(
                    f"node {info.node} not idle after {timeout:.0f} s (sinfo: {state!r})\n"
                    f"{info.logs()}"
                )
            time.sleep(0.3)
        info.startup_seconds = time.monotonic() - t0
        yield info
    finally:
        try:
            if any(name == "slurmctld" for name, _ in started):
                _cancel_our_jobs(info, env)
        finally:
            for _name, proc in reversed(started):  # slurmd, slurmctld, then munged
                _stop(proc)
            if info.spool.parent != info.workdir and info.spool.name.startswith("hgslurm-spool-"):
                shutil.rmtree(info.spool, ignore_errors=True)
            if old_conf is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old_conf


# --------------------------------------------------------------------------- running Snakemake


def make_test_profile(
    dest: str | os.PathLike,
    cluster: ClusterInfo,
    *,
    base: str | os.PathLike = SLURM_PROFILE,
    init_seconds: int = 2,
    jobs: int | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``dest/config.yaml``: ``base``'s profile made to fit the test cluster.

    GPU requests become 0 (the node has no GPU: a ``--gpus`` job would be refused), ``gpu_model``,
    partition and account are dropped, memory is capped to a share of the node, CPUs and threads
    to the node's CPUs, and the first status check comes after ``init_seconds``.
    """
    import yaml

    base_conf = Path(base) / "config.yaml"
    profile = yaml.safe_load(base_conf.read_text()) if base_conf.exists() else {}
    profile = dict(profile or {})
    mem_cap = max(256, cluster.real_memory_mb // max(1, cluster.cpus))

    def fit(resources: dict) -> dict:
        out = {}
        for key, value in (resources or {}).items():
            if key in (
                "slurm_partition",
                "slurm_account",
                "gpu_model",
                "constraint",
                "qos",
                "slurm_extra",
            ):
                continue
            if key == "gpu":
                value = 0
            elif key in ("mem_mb", "mem_mb_per_cpu") and isinstance(value, int):
                value = min(value, mem_cap)
            elif key == "mem" and isinstance(value, str):
                continue  # mem_mb is enough here
            elif key in ("cpus_per_task", "cpus_per_gpu") and isinstance(value, int):
                value = min(value, cluster.cpus)
            out[key] = value
        return out

    profile["executor"] = "slurm"
    profile["default-resources"] = fit(_as_resource_dict(profile.get("default-resources")))
    set_res = profile.get("set-resources") or {}
    if isinstance(set_res, list):  # ["rule:res=val", ...]
        parsed: dict[str, dict] = {}
        for item in set_res:
            rule, _, assignment = str(item).partition(":")
            key, _, val = assignment.partition("=")
            parsed.setdefault(rule, {})[key] = _yaml_scalar(val)
        set_res = parsed
    profile["set-resources"] = {rule: fit(res) for rule, res in set_res.items()}
    threads = profile.get("set-threads") or {}
    profile["set-threads"] = {
        r: min(int(t), cluster.cpus) if str(t).isdigit() else t for r, t in threads.items()
    }
    if not profile["set-threads"]:
        del profile["set-threads"]
    profile["max-threads"] = cluster.cpus
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = int(init_seconds)
    profile.pop("slurm-no-account", None)
    if jobs is not None:
        profile["jobs"] = jobs
    profile.setdefault("jobs", 4)
    profile.setdefault("latency-wait", 5)
    profile.update(extra or {})
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(
        "# generated by tests/slurm_cluster.py:make_test_profile from "
        f"{base_conf} for the local test cluster\n" + yaml.safe_dump(profile, sort_keys=False)
    )
    return dest


def _as_resource_dict(value) -> dict:
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    out = {}
    for item in value:  # ["mem_mb=1000", ...]
        key, _, val = str(item).partition("=")
        out[key.strip()] = _yaml_scalar(val.strip())
    return out


def _yaml_scalar(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


@dataclasses.dataclass
class WorkflowRun:
    returncode: int
    output: str  # stdout + stderr of snakemake
    seconds: float
    profile: Path
    command: list[str]

    @property
    def slurm_jobids(self) -> list[str]:
        """SLURM job ids from the plugin's 'Job N has been submitted with SLURM jobid M' lines."""
        return re.findall(r"has been submitted with SLURM jobid (\d+)", self.output)

    def submitted_rules(self) -> list[str]:
        """Rule names whose jobs were submitted.

        Read from Snakemake's 'rule X:' / 'localrule X:' lines: the log is the only record.
        """
        return re.findall(r"^\s*(?:local)?rule (\w+):", self.output, flags=re.M)


#: A grouping for the real workflow's tiny preset (`group_args(TINY_GROUPS)`): the cheap data and
#: result rules go in one SLURM job each, train/separate/score stay one job per wildcard set.
#: Measured here: the data stage took 41 s as one group job against ~80 s as four jobs, because
#: every job costs two Snakemake start-ups plus the plugin's status polling (first check after
#: `init_seconds`, then every +10 s while nothing finishes).
TINY_GROUPS = {
    "data": [
        "synth_corpus",
        "fetch_mir1k",
        "import_local_mir1k",
        "catalogue",
        "spectrogram_cache",
        "references",
        "baseline",
    ],
}


def group_args(
    groups: dict[str, Sequence[str]], *, node_cpus: int, components: int = 100
) -> list[str]:
    """``--groups rule=group ... --group-components group=N ... --cores node_cpus`` for extra_args.

    Snakemake asks SLURM for the *sum* of the threads of a group's jobs that could run in parallel
    (e.g. two baseline shards next to the cache: 3 CPUs).  Without ``--cores`` a group can ask for
    more CPUs than any node has, and SLURM keeps it pending forever (Reason=PartitionConfig);
    with ``--cores node_cpus`` Snakemake stacks the layers that do not fit in series instead.
    """
    args = ["--groups", *[f"{rule}={name}" for name, rules in groups.items() for rule in rules]]
    return args + [
        "--group-components",
        *[f"{name}={components}" for name in groups],
        "--cores",
        str(node_cpus),
    ]


def _resolve(path: str | os.PathLike, workdir: Path) -> Path:
    """A relative path is taken relative to workdir when it exists there, else to the cwd."""
    p = Path(path)
    if not p.is_absolute() and (workdir / p).exists():
        return (workdir / p).resolve()
    return p.resolve()


#: squeue reasons that mean a pending job can never start on this cluster as configured
UNSCHEDULABLE_REASONS = (
    "PartitionConfig",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "ReqNodeNotAvail",
    "InvalidAccount",
    "InvalidQOS",
)


def _unschedulable_jobs(cluster: ClusterInfo, env: dict[str, str]) -> dict[str, str]:
    """{job id: reason} of pending jobs that SLURM says can never start (squeue's %r)."""
    try:
        r = subprocess.run(
            [which("squeue"), "-h", "-t", "PENDING", "-o", "%i %r"],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    jobs = {}
    for line in r.stdout.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[1].startswith(UNSCHEDULABLE_REASONS):
            jobs[parts[0]] = parts[1]
    return jobs


def run_workflow_on_slurm(
    workdir: str | os.PathLike,
    snakefile: str | os.PathLike,
    configfile: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    extra_args: Sequence[str] = (),
    *,
    cluster: ClusterInfo,
    profile_base: str | os.PathLike = SLURM_PROFILE,
    profile_dir: str | os.PathLike | None = None,
    jobs: int | None = None,
    init_seconds: int = 2,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> WorkflowRun:
    """Run ``snakemake --workflow-profile <test profile>`` on the local cluster; the result.

    The profile is ``profile_base`` (profiles/slurm) fitted to the test cluster by make_test_profile
    (GPU requests set to 0 etc.), written to a new ``profile-*`` folder in the cluster's workdir
    unless ``profile_dir`` is given (so nothing lands in a repository used as ``workdir``).
    Snakemake runs from this Python's environment (``sys.executable -m snakemake``) with
    ``--directory workdir``; jobs inherit the environment (sbatch --export=ALL).
    Relative ``snakefile``/``configfile`` paths are taken relative to ``workdir`` when they exist
    there.  ``extra_args`` go last (targets, ``--config k=v``, ...); note that a
    ``--set-resources`` there replaces the profile's whole set-resources (it does not merge).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    profile = make_test_profile(
        profile_dir or tempfile.mkdtemp(prefix="profile-", dir=cluster.workdir),
        cluster,
        base=profile_base,
        init_seconds=init_seconds,
        jobs=jobs,
    )
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(_resolve(snakefile, workdir)),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(profile.resolve()),
    ]
    if configfile:
        files = [configfile] if isinstance(configfile, (str, os.PathLike)) else list(configfile)
        cmd += ["--configfile", *[str(_resolve(f, workdir)) for f in files]]
    cmd += [str(a) for a in extra_args]
    run_env = cluster.env(env)
    # the jobs' `python -m snakemake` must find the same interpreter first
    run_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), run_env["PATH"]])
    t0 = time.monotonic()
    out_file = tempfile.TemporaryFile(mode="w+", dir=cluster.workdir)
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=run_env,
        stdout=out_file,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    note = ""
    stuck_since: dict[str, float] = {}
    while proc.poll() is None:
        elapsed = time.monotonic() - t0
        if elapsed > timeout:
            note = f"\n[run_workflow_on_slurm] snakemake killed after {timeout:.0f} s"
            break
        stuck = _unschedulable_jobs(cluster, run_env)
        now = time.monotonic()
        stuck_since = {j: stuck_since.get(j, now) for j in stuck}
        hopeless = {j: stuck[j] for j, since in stuck_since.items() if now - since > 15}
        if hopeless:
            note = (
                "\n[run_workflow_on_slurm] snakemake killed: SLURM can never start job(s) "
                + ", ".join(f"{j} (pending, reason {r})" for j, r in hopeless.items())
                + " - the request is larger than the node (a group's summed threads or memory?)"
            )
            break
        time.sleep(2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rc = -1
    else:
        rc = proc.returncode
    out_file.seek(0)
    output = out_file.read() + note
    out_file.close()
    run = WorkflowRun(rc, output, time.monotonic() - t0, profile, cmd)
    if check and rc != 0:
        raise AssertionError(
            f"snakemake on SLURM failed (rc={rc}): {' '.join(cmd)}\n{_tail(output, 80)}\n"
            f"{cluster.logs(30)}"
        )
    return run


# --------------------------------------------------------------------------- by hand


def _main(argv: Sequence[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Start a throw-away local SLURM cluster until Ctrl-C.")
    ap.add_argument("command", choices=["start"])
    ap.add_argument("workdir")
    ap.add_argument("--cpus", type=int)
    args = ap.parse_args(argv)
    try:
        with local_slurm_cluster(args.workdir, cpus=args.cpus) as info:
            print(f"cluster up in {info.startup_seconds:.1f} s; pids {info.pids}")
            print(f"export SLURM_CONF={info.conf}")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopping")
    except SlurmUnavailable as exc:
        print(f"unavailable: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
