#!/bin/sh
# OxiVPN acceptance on a real Mac (macOS 11 or later): what cannot be shown from Linux —
# utun, routes, scutil DNS, the pf kill switch, launchd. Run with sudo; every step prints
# PASS or FAIL, and the exit code is the number of failures.
#
#   sudo packaging/macos/acceptance.sh -p OxiVPN-0.1.0.pkg -c work.ovpn [-a auth.txt] [-h 1.1.1.1]
#   (reboot)
#   sudo packaging/macos/acceptance.sh -P after-reboot,uninstall
#
# Phases (-P, comma-separated; default install,connect,prepare-reboot):
#   install         installer -pkg; daemon loaded, binaries, group
#   connect         import, connect, routes, DNS (scutil), kill switch (pf anchor), leak
#                   probe, kill -9 the helper (the anchor must stay until the restarted
#                   helper removes it), reconnect, disconnect (pf back as it was)
#   prepare-reboot  connect and leave the tunnel up; then reboot yourself
#   after-reboot    daemon back, nothing of the tunnel left, pf as before
#   uninstall       uninstall.sh; nothing left
set -u

PKG="" PROFILE="" AUTH="" PROBE="1.1.1.1" PHASES="install,connect,prepare-reboot"
while getopts "p:c:a:h:P:" o; do
    case $o in
        p) PKG=$OPTARG ;; c) PROFILE=$OPTARG ;; a) AUTH=$OPTARG ;; h) PROBE=$OPTARG ;;
        P) PHASES=$OPTARG ;; *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "FAIL  run with sudo"; exit 1; }

CTL=/usr/local/bin/oxivpnctl
HELPER=/Library/PrivilegedHelperTools/com.oxivpn.helper
LABEL=com.oxivpn.helper
ANCHOR=com.apple/250.oxivpn
NAME=acceptance
STATE=/var/tmp/oxivpn-acceptance.state
LOG=/var/tmp/oxivpn-acceptance.log
passed=0 failed=0
here=$(cd "$(dirname "$0")" && pwd)

has_phase() { case ",$PHASES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# step "what" command...: runs the command, prints PASS/FAIL with its last output line.
step() {
    what=$1; shift
    out=$("$@" 2>&1); rc=$?
    last=$(printf '%s\n' "$out" | tail -n 1)
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS  $what${last:+ - $last}"
    else
        failed=$((failed + 1)); echo "FAIL  $what - $last"
    fi
    printf '%s [%s] %s\n%s\n' "$(date -u +%FT%TZ)" "$rc" "$what" "$out" >>"$LOG"
}
fail() { echo "$*"; return 1; }
ctl() { "$CTL" --json "$@"; }
tunnel_iface() { ctl status | sed -n 's/.*"interface":"\([a-z0-9]*\)".*/\1/p' | head -n 1; }
pf_rules() { pfctl -a "$ANCHOR" -s rules 2>/dev/null; }
pf_enabled() { pfctl -s info 2>/dev/null | grep -q "Status: Enabled"; }
phys_if() { route -n get -inet default 2>/dev/null | awk '/interface:/{print $2}' | grep -v '^utun' | head -n 1; }
# A ping bound to the physical interface: answered only if traffic leaks past the kill switch.
probe_outside() { ping -c 2 -t 4 -b "$1" "$PROBE" >/dev/null 2>&1; }

do_connect() {
    set -- connect "$NAME" --timeout 90 --kill-switch on
    [ -n "$AUTH" ] && set -- "$@" --auth-file "$AUTH"
    ctl "$@" >/dev/null || fail "connect failed: $(ctl status)"
    i=$(tunnel_iface); [ -n "$i" ] || fail "no tunnel interface in status"
    echo "$i"
}

tunnel_gone() {
    left=""
    netstat -rn -f inet | grep -E '^(0/1|128\.0/1) .*utun' >/dev/null && left="$left def1-routes"
    scutil <<EOF | grep -q 'OxiVPN' && left="$left scutil-DNS"
list State:/Network/Service/OxiVPN.*
EOF
    [ -n "$(pf_rules)" ] && left="$left pf-anchor"
    [ -z "$left" ] || fail "left behind:$left"
}

pf_baseline_restored() {
    before=$(cat "$STATE.pf" 2>/dev/null || echo unknown)
    now=$(pf_enabled && echo enabled || echo disabled)
    [ "$before" = unknown ] || [ "$before" = "$now" ] || fail "pf was $before before OxiVPN, is $now now"
    echo "pf $now (was $before)"
}

echo "OxiVPN acceptance on macOS $(sw_vers -productVersion) ($(uname -m)), phases $PHASES"

if has_phase install; then
    step "pf state recorded before install" sh -c "pfctl -s info 2>/dev/null | grep -q 'Status: Enabled' && echo enabled >'$STATE.pf' || echo disabled >'$STATE.pf'; cat '$STATE.pf'"
    step "installer -pkg" sh -c "[ -n '$PKG' ] || { echo 'pass -p PKG'; exit 1; }; installer -pkg '$PKG' -target /"
    step "launchd runs the helper" sh -c "launchctl print system/$LABEL | grep -q 'state = running' && echo running"
    step "binaries are universal (arm64 + x86_64)" sh -c "lipo -archs '$HELPER' | grep -q arm64 && lipo -archs '$HELPER' | grep -q x86_64 && lipo -archs '$CTL'"
    step "group oxivpn exists" dscl . -read /Groups/oxivpn PrimaryGroupID
    step "helper answers on its socket" sh -c "'$CTL' status"
fi

if has_phase connect; then
    PHYS=$(phys_if)
    step "import the profile" sh -c "[ -n '$PROFILE' ] || { echo 'pass -c PROFILE'; exit 1; }; '$CTL' import '$PROFILE' --name $NAME"
    step "connect reaches Connected" do_connect
    IF=$(tunnel_iface)
    step "routes: the probe goes into $IF, the server outside it" sh -c "
        r=\$(route -n get $PROBE | awk '/interface:/{print \$2}'); [ \"\$r\" = '$IF' ] || { echo \"$PROBE via \$r\"; exit 1; }
        s=\$('$CTL' --json status | sed -n 's/.*\"server_addr\":\"\([^\"]*\)\".*/\1/p' | head -n 1)
        rs=\$(route -n get \"\$s\" | awk '/interface:/{print \$2}'); [ \"\$rs\" != '$IF' ] || { echo \"server \$s routed into its own tunnel\"; exit 1; }
        echo \"server \$s via \$rs\""
    step "DNS: scutil publishes the tunnel's servers and names resolve" sh -c "
        scutil --dns | grep -A3 'if_index.*($IF)' | grep -q nameserver || scutil <<EOF | grep -q ServerAddresses || exit 1
show State:/Network/Service/OxiVPN-$IF/DNS
EOF
        dscacheutil -q host -a name www.apple.com | grep -q ip_address && echo resolved"
    step "kill switch: pf anchor $ANCHOR loaded and pf enabled" sh -c "
        n=\$(pfctl -a $ANCHOR -s rules 2>/dev/null | wc -l | tr -d ' '); [ \"\$n\" -gt 0 ] || { echo 'anchor empty'; exit 1; }
        pfctl -s info | grep -q 'Status: Enabled' || { echo 'pf disabled'; exit 1; }; echo \"\$n rules\""
    step "leak probe: nothing leaves through $PHYS" sh -c "
        ! ping -c 2 -t 4 -b '$PHYS' $PROBE >/dev/null 2>&1 || { echo 'ping outside the tunnel answered'; exit 1; }
        ! curl -s -m 5 --interface '$PHYS' http://$PROBE/ >/dev/null || { echo 'HTTP outside the tunnel answered'; exit 1; }
        echo blocked"
    # launchd restarts the helper at once (KeepAlive): check within that gap, and say so
    # when the new helper was faster than the check.
    step "kill -9 the helper: the pf anchor stays" sh -c "
        pid=\$(pgrep -x com.oxivpn.helper); [ -n \"\$pid\" ] || { echo 'helper not running'; exit 1; }
        kill -9 \$pid; n=\$(pfctl -a $ANCHOR -s rules 2>/dev/null | wc -l | tr -d ' ')
        [ \"\$n\" -gt 0 ] && { echo \"\$n rules right after the kill\"; exit 0; }
        new=\$(pgrep -x com.oxivpn.helper); echo \"anchor empty (restarted helper: \${new:-none}; if it is already running the check lost the race)\"; exit 1"
    step "launchd restarted the helper; it removed the dead session's changes" sh -c "
        sleep 5; launchctl print system/$LABEL | grep -q 'state = running' || { echo 'not running'; exit 1; }"
    step "nothing of the killed session left" tunnel_gone
    step "reconnect after recovery" do_connect
    step "disconnect undoes routes, DNS, pf" sh -c "'$CTL' disconnect $NAME >/dev/null && sleep 1"
    step "nothing left after disconnect" tunnel_gone
    step "pf back as it was before OxiVPN" pf_baseline_restored
    step "network works outside the tunnel again" sh -c "ping -c 2 -t 4 -b '$PHYS' $PROBE >/dev/null && echo reachable"
fi

if has_phase prepare-reboot; then
    step "connect and leave it up for the reboot test" do_connect
    echo "NEXT  reboot now, then: sudo $0 -P after-reboot,uninstall"
fi

if has_phase after-reboot; then
    step "launchd runs the helper after boot" sh -c "sleep 5; launchctl print system/$LABEL | grep -q 'state = running' && echo running"
    step "nothing of the last boot's tunnel is left" tunnel_gone
    step "pf as before OxiVPN" pf_baseline_restored
    step "no session survived the reboot" sh -c "! '$CTL' --json status | grep -q '\"profile_name\":\"$NAME\"'"
fi

if has_phase uninstall; then
    step "uninstall" sh "$here/uninstall.sh"
    step "daemon, binaries and group removed" sh -c "
        ! launchctl print system/$LABEL >/dev/null 2>&1 || { echo 'daemon loaded'; exit 1; }
        [ ! -e '$HELPER' ] && [ ! -e '$CTL' ] || { echo 'binaries left'; exit 1; }
        ! dscl . -read /Groups/oxivpn >/dev/null 2>&1 || { echo 'group left'; exit 1; }"
    step "no tunnel state left" tunnel_gone
    step "pf as before OxiVPN" pf_baseline_restored
fi

echo "$passed passed, $failed failed (details: $LOG)"
exit "$failed"
