"""Fixtures shared by the sensor's tests: real MLflow servers (see tests/serve/mlflow_servers.py)."""

from tests.serve.mlflow_servers import mlflow_postgres_server, mlflow_sqlite_server

__all__ = ["mlflow_postgres_server", "mlflow_sqlite_server"]
