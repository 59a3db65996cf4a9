-- A second database for MLflow's users and permissions (the basic-auth app), next to the tracking store.
CREATE DATABASE mlflow_auth OWNER mlflow;
