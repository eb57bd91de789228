#!/usr/bin/env bash
# Build dist/registry-appliance: one self-contained executable for this platform (Linux x86_64),
# with Python, Twisted, OpenSSL, bcrypt and cryptography inside. PyInstaller and a copy of the
# project go into build/venv, so the project's own .venv stays clean.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=build/venv
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check 'pyinstaller>=6.10,<7' .
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/registry-appliance.spec
ls -l dist/registry-appliance
