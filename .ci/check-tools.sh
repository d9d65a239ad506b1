#!/usr/bin/env bash
# Checks (and where it can, installs) what the tests need. With CI=true a
# missing tool is an error; elsewhere it is a warning and the tests that need
# it skip with the same hint.
set -u
missing=0
# CI as the tests read it (awstest.InCI: Go's strconv.ParseBool).
in_ci() { [[ "${CI:-}" =~ ^(1|t|T|true|TRUE|True)$ ]]; }
need() { # name, install hint
  if in_ci; then echo "error: $1 is missing: $2" >&2; missing=1
  else echo "warning: $1 is missing, tests that need it will skip: $2" >&2; fi
}
command -v go >/dev/null || { echo "error: go is missing (Go 1.26 from go.dev)" >&2; exit 1; }
command -v moto_server >/dev/null || need moto_server "pip install 'moto[server]'"
command -v cfn-lint >/dev/null || need cfn-lint "pip install cfn-lint"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser test (apt-get install -y chromium)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
      || need chromium "apt-get install -y chromium"
  else
    need chromium "sudo apt-get install -y chromium"
  fi
fi
exit $missing
