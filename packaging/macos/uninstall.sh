#!/bin/sh
# OxiVPN: remove everything the pkg installed (macOS has no pkg uninstaller). Run with sudo.
# User profiles (~/Library/Application Support/OxiVPN) are left alone.
set -e
[ "$(id -u)" = 0 ] || { echo "run with sudo" >&2; exit 1; }
launchctl bootout system/com.oxivpn.helper 2>/dev/null || true
# Lockdown (block all traffic while disconnected) outlives the helper on purpose, not the
# package: flush its pf anchor and release its pf reference.
LOCKDOWN_TOKEN="/Library/Application Support/OxiVPN/helper/lockdown.firewall.json.pf-token"
/Library/PrivilegedHelperTools/com.oxivpn.helper remove-lockdown \
    --state-dir "/Library/Application Support/OxiVPN/helper" 2>/dev/null \
    || pfctl -a com.apple/250.oxivpn_lockdown -F rules 2>/dev/null || true
[ -f "$LOCKDOWN_TOKEN" ] && pfctl -X "$(cat "$LOCKDOWN_TOKEN")" 2>/dev/null || true
rm -f /Library/LaunchDaemons/com.oxivpn.helper.plist /Library/PrivilegedHelperTools/com.oxivpn.helper
rm -f /usr/local/bin/oxivpnctl
rm -rf /Applications/OxiVPN.app "/Library/Application Support/OxiVPN/helper" /Library/Logs/OxiVPN /var/run/oxivpn
rmdir "/Library/Application Support/OxiVPN" 2>/dev/null || true
dseditgroup -o delete oxivpn 2>/dev/null || true
pkgutil --forget com.oxivpn.pkg >/dev/null 2>&1 || true
echo "OxiVPN removed."
