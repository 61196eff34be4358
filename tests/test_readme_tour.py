"""The README's "Operator tour", run as written: each `python manage.py …`
line, in order, with the venv's python, against the database `make run`
uses (the test database here). A renamed command or flag fails this test.

Lines that need the outside world or name placeholders are changed, and only
these (see SUBSTITUTED):
- `config set hotkey_mnemonic "word1 word2 … word12"`: a real 12-word phrase
  instead of the placeholder words (the command checks it makes a keypair);
- `config set metagraph_source chain`: `file`, with `metagraph_file` set to a
  local subnet's snapshot, so `metagraph sync` needs no chain (finney);
- `vep_AbCd`: the prefix of the key the tour's `key create` made;
- `key delete 3`: the id of a spare key made for it (ids come from a sequence);
- `localnet … --port 9100 --out var/metagraph.json`: free ports and a
  temporary file; it serves until stopped, so it passes when it has written
  its snapshot and then stops on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bittensor.sp_core import Keypair

from keys.models import ApiKey
from tests.commands import BASE_DIR, database_url

SUBSTITUTED = (
    'config set hotkey_mnemonic "word1 word2 … word12"',
    "config set metagraph_source chain",
    "vep_AbCd",
    "key delete 3",
    "localnet --miners 8 --port 9100 --out var/metagraph.json",
)


def tour_lines() -> list[str]:
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split("## Operator tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_tour_names_what_this_test_substitutes():
    text = "\n".join(tour_lines())
    assert all(placeholder in text for placeholder in SUBSTITUTED)


@pytest.mark.redis
def test_the_operator_tour_runs_as_written(postgres, redis_url, subnet, tmp_path):
    snapshot = tmp_path / "metagraph.json"
    snapshot.write_text(json.dumps(subnet.snapshot()))
    venv_bin = str(Path(sys.executable).parent)  # `python` is the venv's
    env = {
        **os.environ,
        "PATH": venv_bin + os.pathsep + os.environ["PATH"],
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
    }

    def run(line: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", "-c", line], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        return done

    run("python manage.py key create -n spare-for-the-tour")
    spare_id = ApiKey.objects.get(name="spare-for-the-tour").pk
    prefix = None
    for line in tour_lines():
        assert line.startswith("python manage.py "), line
        line = line.replace('"word1 word2 … word12"', shlex.quote(Keypair.generate_mnemonic(12)))
        if line.endswith("config set metagraph_source chain"):
            run(f"python manage.py config set metagraph_file {shlex.quote(str(snapshot))}")
            line = line.replace("chain", "file")
        if prefix:
            line = line.replace("vep_AbCd", prefix)
        line = re.sub(r"(key delete) 3$", rf"\g<1> {spare_id}", line)
        if " localnet " in line:
            run_localnet(line, env, tmp_path)
            continue
        done = run(line)
        if " key create " in line:
            prefix = ApiKey.objects.latest("pk").prefix
            assert prefix in done.stdout
    assert prefix, "the tour creates a key"


def run_localnet(line: str, env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "localnet.json"
    line = line.replace("--port 9100", "--port 0").replace("--out var/metagraph.json", f"--out {out}")
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=BASE_DIR, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read()
        assert len(json.loads(out.read_text())["neurons"]) == 8
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
