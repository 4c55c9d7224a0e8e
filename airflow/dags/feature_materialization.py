"""Scheduled materialization, and a backfill split into shards, as Airflow DAGs.

`feature_materialization`, every 6 hours: Feast's incremental materialization. The workers push
every row online as they go; this is the repair path that copies the offline snapshots into
Redis for whatever a worker did not push (an outage, a replay run without --online).

`feature_backfill`, triggered by hand with a range: `make replay` split into
AURORA_BACKFILL_SHARDS tasks, `--shard K/N` each, run in parallel by Airflow's workers. The
shards' users are disjoint (a stable hash of user_id, stream/replay/shard.py), so each task
replaces its own users' rows in the range, and a retried task replays its shard again (from its
checkpoint when it runs where it ran before). AURORA_HOME is where the project is checked out
with its venv (`make install`); the AURORA_* settings come from the Airflow worker's
environment, as for every other component.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.models.param import Param
from airflow.utils.task_group import TaskGroup

from airflow import DAG

try:  # Airflow 3 moved the operator into the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

AURORA_HOME = os.environ.get("AURORA_HOME", "/app")
COMMAND = "cd {home} && .venv/bin/python feature_repo/materialize.py incremental"
# The split is fixed when the DAG is parsed: Airflow draws the tasks from it.
SHARDS = int(os.environ.get("AURORA_BACKFILL_SHARDS", "4"))
SHARD_COMMAND = (
    "cd {home} && .venv/bin/python -m stream replay --source postgres "
    "--from {{{{ params.start }}}} --to {{{{ params.end }}}} --shard {k}/{n}"
)

with DAG(
    "feature_materialization",
    schedule="0 */6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,  # a missed run is covered by the next: incremental starts where the last ended
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["aurora", "feast"],
) as dag:
    materialize = BashOperator(
        task_id="materialize_features",
        bash_command=COMMAND.format(home=AURORA_HOME),
    )

with DAG(
    "feature_backfill",
    schedule=None,  # a backfill is an operator's decision: trigger it with its range
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "start": Param("2026-11-01", type="string", description="range start, ISO date or time"),
        "end": Param("2026-12-01", type="string", description="range end, exclusive"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["aurora", "replay"],
) as backfill_dag:
    with TaskGroup("backfill", tooltip=f"make replay, {SHARDS} shards by user") as backfill:
        for k in range(SHARDS):
            BashOperator(
                task_id=f"replay_shard_{k}_of_{SHARDS}",
                bash_command=SHARD_COMMAND.format(home=AURORA_HOME, k=k, n=SHARDS),
            )
    # The offline rows are replaced; the online store takes each user's newest one after.
    backfill >> BashOperator(
        task_id="materialize_after_backfill",
        bash_command=COMMAND.format(home=AURORA_HOME),
    )
