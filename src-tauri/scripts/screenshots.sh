#!/usr/bin/env bash
# Takes the screenshots in docs/screenshots/ from the real app (embedded UI, debug
# build) under Xvfb, talking to the fake helper (examples/fake_helper.rs).
# Needs: xvfb, xdotool, imagemagick, dbus. Run from anywhere:
#   src-tauri/scripts/screenshots.sh [OUT_DIR]
# Clicks go to fixed coordinates of the 960x640 window; under heavy load xdotool may
# drop keystrokes, so each step waits and types slowly.
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

(cd "$root" && npm --prefix ui run build --silent && cargo build -q -p oxivpn-app --bin oxivpn --example fake_helper)
mkdir -p "$out" "$work/home"
{
  printf 'client\ndev tun\nproto udp\nremote vpn.example.com 1194\nresolv-retry infinite\nnobind\n'
  printf 'persist-key\npersist-tun\nremote-cert-tls server\ndata-ciphers AES-256-GCM:CHACHA20-POLY1305\n'
  printf 'auth SHA256\nauth-user-pass\nscript-security 2\nup /etc/openvpn/update-resolv-conf\n'
  printf 'down /etc/openvpn/update-resolv-conf\nverb 3\n<ca>\n'
  cat "$root/src-tauri/tests/support/ca.pem"
  printf '</ca>\n'
} > "$work/Office.ovpn"

"$target/debug/examples/fake_helper" "$work/helper.sock" >/dev/null &
pids+=($!)
Xvfb :93 -screen 0 960x640x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
sleep 2

export DISPLAY=:93 HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share"
export XDG_CONFIG_HOME="$work/home/.config" OXIVPN_SOCKET="$work/helper.sock" NO_AT_BRIDGE=1
export WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1

shot() { xdotool mousemove 900 620; sleep 1; import -window root "$out/$1.png"; echo "$out/$1.png"; }
slowtype() { for c in $(echo "$1" | grep -o .); do xdotool type "$c"; sleep 0.3; done; }

dbus-run-session -- "$target/debug/oxivpn" "$work/Office.ovpn" >"$work/app.log" 2>&1 &
pids+=($!)
sleep 20
shot import-report
xdotool key Escape; sleep 2; shot main
xdotool mousemove 356 180 click 1; sleep 4          # Connect
xdotool mousemove 480 270 click 1; slowtype ann
xdotool mousemove 448 341 click 1; slowtype secret
sleep 1; shot credentials
xdotool key Return; sleep 25; shot connected
xdotool mousemove 419 30 click 1; sleep 3            # Routes tab
xdotool mousemove 560 134 click 1; slowtype 10.0.0.3
xdotool mousemove 876 134 click 1; sleep 3; shot routes
xdotool mousemove 484 30 click 1; sleep 3; shot log   # Log tab
