#!/usr/bin/env bash
# Takes the screenshots in docs/screenshots/ from the real app under Xvfb, talking to
# the fake helper (examples/fake_helper.rs). Needs: xvfb, xdotool, imagemagick, dbus.
# Usage: src-tauri/scripts/screenshots.sh [OUT_DIR]   (from the workspace root)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/docs/screenshots}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q -p oxivpn-app --bin oxivpn --example fake_helper
mkdir -p "$out" "$work/home" "$work/profiles"

cat > "$work/profiles/Office.ovpn" <<'OVPN'
# Example profile as many providers ship it
client
dev tun
proto udp
remote vpn.example.com 1194
resolv-retry infinite
nobind
persist-key
persist-tun
remote-cert-tls server
data-ciphers AES-256-GCM:CHACHA20-POLY1305
auth SHA256
auth-user-pass
script-security 2
up /etc/openvpn/update-resolv-conf
down /etc/openvpn/update-resolv-conf
verb 3
<ca>
-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUQx8Xb1d2Jc1F4Zb3y9C1y6k7mYAwCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----
</ca>
OVPN

"$target/debug/examples/fake_helper" "$work/helper.sock" >/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/helper.sock" ] && break; sleep 0.1; done

export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config"
export OXIVPN_SOCKET="$work/helper.sock" NO_AT_BRIDGE=1 WEBKIT_DISABLE_COMPOSITING_MODE=1

shoot() { # name
  sleep "${2:-1.5}"
  import -window root "$out/$1.png"
  echo "screenshot: $out/$1.png"
}

# One X session for the whole run; the steps are timed, so each waits generously.
xvfb-run -a -s "-screen 0 960x640x24" dbus-run-session -- bash -c '
  set -euo pipefail
  '"$(declare -f shoot)"'
  out="'"$out"'"
  "'"$target"'/debug/oxivpn" "'"$work"'/profiles/Office.ovpn" &
  app=$!
  trap "kill $app 2>/dev/null || true" EXIT
  for _ in $(seq 100); do xdotool search --name "^OxiVPN$" >/dev/null 2>&1 && break; sleep 0.2; done
  win=$(xdotool search --name "^OxiVPN$" | head -1)
  xdotool windowmove "$win" 0 0 windowsize "$win" 960 640
  shoot import-report 4
  xdotool key Escape
  shoot main
  xdotool key Tab Tab Tab Tab Tab Tab Return || true
  ${CLICK_CONNECT:-true}
  shoot credentials
  xdotool type --delay 30 "ann"
  xdotool key Tab
  xdotool type --delay 30 "correct horse"
  xdotool key Return
  shoot connected 7
'
