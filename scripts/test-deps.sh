#!/usr/bin/env bash
# What the tests need beyond the Python environment. Idempotent; installs only what is missing.
set -euo pipefail
# (Nothing yet: later issues add openssh-server for remote profiling and chromium for the report.)
exit 0
