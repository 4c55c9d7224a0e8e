"""Scheduled materialization: every 6 hours, Feast's incremental materialization.

The workers push every row online as they go; this is the repair path that copies the offline
snapshots into Redis for whatever a worker did not push (an outage, a replay run without
--online). AURORA_HOME is where the project is checked out with its venv (`make install`); the
AURORA_* settings come from the Airflow worker's environment, as for every other component.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 moved the operator into the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

AURORA_HOME = os.environ.get("AURORA_HOME", "/app")
COMMAND = "cd {home} && .venv/bin/python feature_repo/materialize.py incremental"

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
