#!/bin/sh
# Start `mlflow server --app-name basic-auth` from environment variables only (no secrets in files or images).
# Required: MLFLOW_BACKEND_STORE_URI, MLFLOW_AUTH_DATABASE_URI, MLFLOW_ARTIFACTS_DESTINATION,
#           MLFLOW_FLASK_SERVER_SECRET_KEY, MLFLOW_AUTH_ADMIN_PASSWORD (used on the first start only).
# The S3 store is configured by MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
set -eu
: "${MLFLOW_BACKEND_STORE_URI:?set it to postgresql://USER:PASSWORD@HOST:5432/mlflow}"
: "${MLFLOW_AUTH_DATABASE_URI:?set it to postgresql://USER:PASSWORD@HOST:5432/mlflow_auth}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set it to s3://BUCKET/artifacts}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set it to a long random string (CSRF protection of the auth app)}"

# The auth app reads its settings from an ini file; write one from the environment.
export MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-/tmp/mlflow-basic-auth.ini}"
cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
chmod 600 "$MLFLOW_AUTH_CONFIG_PATH"

# Artifacts are proxied (--serve-artifacts): clients need only the MLflow login, never the S3 keys.
exec mlflow server --app-name basic-auth --serve-artifacts \
    --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" "$@"
