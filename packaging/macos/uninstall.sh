#!/bin/sh
# OxiVPN: remove everything the pkg installed (macOS has no pkg uninstaller). Run with sudo.
# User profiles (~/Library/Application Support/OxiVPN) are left alone.
set -e
[ "$(id -u)" = 0 ] || { echo "run with sudo" >&2; exit 1; }
launchctl bootout system/com.oxivpn.helper 2>/dev/null || true
rm -f /Library/LaunchDaemons/com.oxivpn.helper.plist /Library/PrivilegedHelperTools/com.oxivpn.helper
rm -f /usr/local/bin/oxivpnctl
rm -rf /Applications/OxiVPN.app "/Library/Application Support/OxiVPN/helper" /Library/Logs/OxiVPN /var/run/oxivpn
rmdir "/Library/Application Support/OxiVPN" 2>/dev/null || true
dseditgroup -o delete oxivpn 2>/dev/null || true
pkgutil --forget com.oxivpn.pkg >/dev/null 2>&1 || true
echo "OxiVPN removed."
