"""The Airflow DAGs, loaded by real Airflow in a virtual environment of its own.

Airflow pins many packages Feast also uses, so it never shares the project's venv: the test
builds one under ~/.cache (once per Airflow version; later runs reuse it), parses the DAG folder
with Airflow's DagBag there, and checks what Airflow sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = "apache-airflow==2.11.2"
DAGS = Path(__file__).resolve().parents[3] / "airflow" / "dags"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aurora-features"

PROBE = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get("feature_materialization")
backfill = bag.dags.get("feature_backfill")
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "schedule": None if dag is None else str(dag.timetable.summary),
    "catchup": None if dag is None else dag.catchup,
    "tasks": None if dag is None else {t.task_id: t.bash_command for t in dag.tasks},
    "backfill": None if backfill is None else {
        "schedule": str(backfill.timetable.summary),
        "params": {k: backfill.params[k] for k in backfill.params},
        "tasks": {t.task_id: t.bash_command for t in backfill.tasks},
        "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in backfill.tasks},
        "rendered": {
            t.task_id: t.render_template(t.bash_command, {"params": backfill.params})
            for t in backfill.tasks
        },
    },
}))
"""


def airflow_python() -> Path:
    venv = CACHE / f"airflow-{AIRFLOW.split('==')[1]}-py{sys.version_info[0]}{sys.version_info[1]}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", AIRFLOW], check=True, timeout=1200
        )
        stamp.touch()
    return python


@pytest.mark.timeout(1500)
def test_airflow_loads_the_materialization_dag(tmp_path: Path) -> None:
    python = airflow_python()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AURORA_HOME": "/srv/aurora",
        "AURORA_BACKFILL_SHARDS": "3",
    }
    result = subprocess.run(
        [str(python), "-c", PROBE, str(DAGS)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["errors"] == {}
    assert seen["dags"] == ["feature_backfill", "feature_materialization"]
    assert seen["schedule"] == "0 */6 * * *"
    assert seen["catchup"] is False
    assert seen["tasks"] == {
        "materialize_features": (
            "cd /srv/aurora && .venv/bin/python feature_repo/materialize.py incremental"
        )
    }

    # The backfill fans out one `--shard K/N` task a shard, then materializes once they all end.
    backfill = seen["backfill"]
    assert backfill["schedule"] == "None"
    assert backfill["params"] == {"start": "2026-11-01", "end": "2026-12-01"}
    shards = [f"backfill.replay_shard_{k}_of_3" for k in range(3)]
    assert sorted(backfill["tasks"]) == [*shards, "materialize_after_backfill"]
    for k, task in enumerate(shards):
        assert backfill["rendered"][task] == (
            "cd /srv/aurora && .venv/bin/python -m stream replay --source postgres "
            f"--from 2026-11-01 --to 2026-12-01 --shard {k}/3"
        )
        assert backfill["upstream"][task] == []
    assert backfill["upstream"]["materialize_after_backfill"] == shards
