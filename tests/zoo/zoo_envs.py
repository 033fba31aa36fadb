"""The zoo's model environments: where they are built, and proof that a command ran in one.

The zoo runs catwalk's commands with the defaults, so each model runs in an environment of its
own: its ``requirements.txt`` plus catwalk, built with uv by the first command that needs it
and cached for the rest (catwalk.model_env). :class:`ZooEnvs` (the ``zoo_envs`` session
fixture) holds the cache folder, what each kind's first command built, and how long it took;
:meth:`ZooEnvs.ran_in` reads the command's own ``environment:`` line and checks it against the
cache, the environment's record and the kind's earlier commands.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from catwalk.model_env import ENV_CACHE_VAR
from catwalk.model_env.pipconf import pip_config
from catwalk.model_env.store import read_record
from catwalk.requirements import requirements_digest

#: The line a command prints on stderr before it moves into the model's environment.
_ENV_LINE = re.compile(r"^environment: (?P<building>building )?(?P<env>/\S+) \((?P<how>[^)]*)")
#: How long a first command may take to build its environment (torch: ~1 min, compiling
#: bytecode; a cold uv cache adds unpacking every wheel), on top of its own time.
BUILD_ALLOWANCE = 600.0


@dataclass
class ZooEnvs:
    """The environments of one test session's zoo models.

    ``fresh``: the cache is this session's own, so each kind's first command must build its
    environment and every later one must find it cached. With ``CATWALK_ENV_CACHE`` set by
    whoever ran the tests, a first command may also find one built by an earlier session.
    """

    cache: Path
    fresh: bool
    #: kind -> the environment its first command used.
    envs: dict[str, Path] = field(default_factory=dict)
    #: kind -> seconds its environment took to build (from the environment's record).
    built_in: dict[str, float] = field(default_factory=dict)

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with the cache the zoo's commands build into."""
        return {**base, ENV_CACHE_VAR: str(self.cache)}

    def allowance(self, kind: str) -> float:
        """Extra seconds the kind's next command may take: building its environment."""
        return 0.0 if kind in self.envs else BUILD_ALLOWANCE

    def ran_in(self, kind: str, model: Path, stderr: str) -> Path:
        """The model environment a command on ``model`` moved into, checked: it is in the
        cache, was built for the model's requirements.txt, and is the kind's one environment
        (built once, by the kind's first command; "(cached)" after)."""
        lines = [m for m in map(_ENV_LINE.match, stderr.splitlines()) if m is not None]
        assert len(lines) == 1, f"expected one 'environment:' line on stderr:\n{stderr[-3000:]}"
        line = lines[0]
        env = Path(line["env"])
        assert env.parent == self.cache, (env, self.cache)
        record = read_record(env)
        assert record is not None, f"{env}: no catwalk-env.json, not a built environment"
        assert record["requirements"] == requirements_digest(model), record
        if kind in self.envs:
            assert env == self.envs[kind], (env, self.envs[kind])
            assert line["how"] == "cached", line.group(0)
        else:
            if self.fresh:
                assert line["building"], f"{kind}: a fresh cache, yet {line.group(0)!r}"
            seconds = record.get("seconds")
            assert isinstance(seconds, (int, float)), record
            self.envs[kind] = env
            self.built_in[kind] = float(seconds)
        assert (env / "bin" / "python").is_file()
        return env

    def summary(self) -> str:
        return "\n".join(
            f"  {kind}: {self.envs[kind].name}, built in {seconds:.1f} s"
            for kind, seconds in self.built_in.items()
        )


def zoo_envs_for(session_tmp: Path) -> ZooEnvs:
    """``CATWALK_ENV_CACHE`` when the caller set it (a developer keeping environments between
    runs: the variable wins, as everywhere in catwalk), else ``session_tmp``: built once per
    session, removed with pytest's old temporary folders."""
    chosen = os.environ.get(ENV_CACHE_VAR, "").strip()
    if chosen:
        return ZooEnvs(Path(chosen).expanduser().resolve(), fresh=False)
    return ZooEnvs(session_tmp.resolve(), fresh=True)


def distributions(env: Path) -> dict[str, str]:
    """The distributions installed in ``env``: normalised name -> version."""
    found = {}
    for info in env.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[name.lower()] = version
    return found


def local_wheel(name: str, version: str) -> str | None:
    """The version of ``name==version`` a find-links folder of pip's configuration holds
    (``2.13.0+cpu`` for torch on this project's machines), or None."""
    for folder in pip_config().get("find-links", "").split():
        for wheel in Path(folder).glob(f"{name}-{version}*.whl"):
            return wheel.name.split("-")[1]
    return None


def assert_cpu_only(kind: str, env: Path) -> None:
    """No GPU wheel reached the environment: each costs gigabytes of downloads. torch comes
    from the wheel on disk when pip's find-links has one (catwalk passes it on to uv)."""
    dists = distributions(env)
    on_disk = local_wheel("torch", "2.13.0")
    if kind == "torch":
        if on_disk is None:
            return  # no local wheel on this machine: PyPI's torch depends on CUDA's wheels
        assert dists.get("torch") == on_disk, (dists.get("torch"), on_disk)
    assert not [name for name in dists if name.startswith("nvidia")], sorted(dists)


def descendants(pid: int) -> list[list[str]]:
    """The command lines of ``pid``'s descendant processes (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[list[str]] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        try:
            raw = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        found.append([part.decode() for part in raw.split(b"\0") if part])
    return found


def command_line(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]
