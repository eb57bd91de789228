#!/usr/bin/env bash
# Install (or upgrade) registry-appliance as a systemd service, from dist/registry-appliance
# (build it with packaging/build.sh). Run as root. Arguments go to `certs init` on the first
# install, e.g. `packaging/install.sh --hostname registry.example.com`.
#
# Re-running it upgrades the binary and the units and keeps config, certificates, users and data.
# DESTDIR installs into another root (as packagers and the tests do); PREFIX (default /usr/local)
# is where the binary goes; BINARY names another binary to install.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary=${BINARY:-$here/dist/registry-appliance}
prefix=${PREFIX:-/usr/local}
root=${DESTDIR:-}
etc=/etc/registry-appliance
data=/var/lib/registry
user=registry

[ -x "$binary" ] || { echo "install.sh: no $binary; run packaging/build.sh first" >&2; exit 1; }

# 1. The binary: copied beside the old one, then renamed over it, so a running server is safe.
bin="$root$prefix/bin/registry-appliance"
mkdir -p "$(dirname "$bin")"
cp "$binary" "$bin.new"
chmod 0755 "$bin.new"
mv -f "$bin.new" "$bin"

# 2. A system user without a shell or home of its own (DESTDIR: in that root's /etc/passwd).
if ! grep -q "^$user:" "$root/etc/passwd" 2>/dev/null; then
  useradd ${root:+--prefix "$root"} --system --user-group --no-create-home \
    --home-dir "$data" --shell /usr/sbin/nologin --comment "registry-appliance" "$user"
fi
uid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/passwd")
gid=$(awk -F: -v u="$user" '$1 == u { print $3 }' "$root/etc/group")

# 3. The units, pointing at the binary's runtime path.
units="$root/etc/systemd/system"
mkdir -p "$units"
for unit in registry-appliance.service registry-appliance.socket; do
  sed "s#/usr/local/bin/registry-appliance#$prefix/bin/registry-appliance#" \
    "$here/systemd/$unit" > "$units/$unit"
  chmod 0644 "$units/$unit"
done

# 4. Config, certificates and htpasswd: root-owned, readable by the service's group only.
install -d -m 0750 -o 0 -g "$gid" "$root$etc" "$root$etc/certs"
install -d -m 0750 -o "$uid" -g "$gid" "$root$data"
if [ ! -e "$root$etc/config.yml" ]; then
  cat > "$root$etc/config.yml" <<EOF
# registry-appliance configuration, in CNCF Distribution's config.yml format.
# Check it with: registry-appliance config check $etc/config.yml
# After editing: systemctl reload registry-appliance (htpasswd, certificates, read-only)
# or systemctl restart registry-appliance (anything else).
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: :5000
  tls:
    certificate: $etc/certs/server.crt
    key: $etc/certs/server.key
auth:
  htpasswd:
    realm: registry-appliance
    path: $etc/htpasswd
appliance:
  admin:
    socket: /run/registry-appliance/admin.sock
EOF
  chmod 0640 "$root$etc/config.yml"
  chown "0:$gid" "$root$etc/config.yml"
  made_config=1
fi
if [ ! -e "$root$etc/htpasswd" ]; then  # empty: auth is on, and nobody can log in yet
  install -m 0640 -o 0 -g "$gid" /dev/null "$root$etc/htpasswd"
fi
if [ ! -e "$root$etc/certs/server.crt" ]; then
  "$bin" certs init --dir "$root$etc/certs" "$@"
fi
# The service reads the server key (never the CA key); `certs init --force` resets modes.
chown "0:$gid" "$root$etc/certs/server.key" "$root$etc/certs/server.crt" "$root$etc/certs/ca.crt"
chmod 0640 "$root$etc/certs/server.key"

# 5. On a running systemd (not for DESTDIR installs): load the units, restart an active server.
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl try-restart registry-appliance.service
fi

cat <<EOF

Installed $prefix/bin/registry-appliance $("$bin" version | cut -d' ' -f2)${made_config:+ and a default $etc/config.yml}.
Next steps:
  1. Give every docker host the CA: copy $etc/certs/ca.crt to
     /etc/docker/certs.d/HOST:5000/ca.crt (podman: /etc/containers/certs.d/HOST:5000/ca.crt).
  2. Add a user:      registry-appliance users add alice
  3. Start it:        systemctl enable --now registry-appliance
     or, to keep the port open across restarts and upgrades:
                      systemctl enable --now registry-appliance.socket
EOF
