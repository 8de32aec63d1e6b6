//! Refused directives: they would make the root helper run a program, load code,
//! or open or write a path named by the profile. The import drops them (never carried
//! out); the helper refuses a profile that still has one. Refused in any spelling.

use super::*;

const RUNS_PROGRAM: &str = "runs a program as root; OxiVPN never runs programs named by a profile";
const DNS_HOOK: &str = "runs a script as root (usually to set DNS); OxiVPN sets routes and DNS itself and never runs profile scripts";
const WRITES_PATH: &str = "writes a file as root; OxiVPN keeps its own logs and state";
const PATH_ROOT: &str =
    "makes the root helper open a path; OxiVPN only uses what is inside the profile";
/// Also the reason for any other name starting with `management`.
pub(super) const MGMT: &str =
    "opens OpenVPN's management interface; OxiVPN is controlled by its own app only";
const SERVER_PATH: &str = "is a server option naming a path the root helper would open; OxiVPN only uses what is inside the profile";
const IPCONFIG: &str =
    "runs ipconfig as administrator (Windows); OxiVPN configures the adapter itself";

const RUNS: Guard = Guard::RunsCode;
const FILE: Guard = Guard::UsesFile;

pub(super) const ENTRIES: &[Directive] = &[
    Directive::class(
        &["up", "down", "route-up", "route-pre-down", "ipchange"],
        REFUSED,
        DNS_HOOK,
    )
    .guard(RUNS),
    Directive::class(&["tls-verify", "iproute"], REFUSED, RUNS_PROGRAM).guard(RUNS),
    Directive::class(
        &[
            "learn-address",
            "auth-user-pass-verify",
            "client-connect",
            "client-disconnect",
        ],
        REFUSED,
        RUNS_PROGRAM,
    )
    .guard(RUNS)
    .server(),
    Directive::class(&["tls-crypt-v2-verify"], REFUSED, RUNS_PROGRAM).server(),
    Directive::class(&["dns-updown", "win-sys"], REFUSED, RUNS_PROGRAM),
    Directive::class(
        &["plugin"],
        REFUSED,
        "loads a plugin (native code) into the VPN process; OxiVPN never loads plugins",
    )
    .guard(RUNS),
    Directive::class(
        &[
            "log",
            "log-append",
            "status",
            "writepid",
            "replay-persist",
            "tls-export-cert",
        ],
        REFUSED,
        WRITES_PATH,
    )
    .guard(FILE),
    Directive::class(
        &["cd", "chroot", "config", "tmp-dir", "dev-node", "capath"],
        REFUSED,
        PATH_ROOT,
    )
    .guard(FILE),
    Directive::class(&["setcon"], REFUSED, PATH_ROOT),
    Directive::class(&["daemon"], REFUSED, DETACH).guard(FILE),
    Directive::class(&["service"], REFUSED, DETACH),
    Directive::class(
        &[
            "dhcp-renew",
            "dhcp-release",
            "dhcp-pre-release",
            "register-dns",
        ],
        REFUSED,
        IPCONFIG,
    ),
    Directive::class(
        &["client-config-dir", "ifconfig-pool-persist"],
        REFUSED,
        SERVER_PATH,
    )
    .guard(FILE)
    .server(),
    Directive::class(&["auth-gen-token-secret"], REFUSED, SERVER_PATH).server(),
    Directive::class(
        &[
            "management",
            "management-client-auth",
            "management-client-user",
            "management-client-group",
            "management-hold",
            "management-query-passwords",
            "management-external-key",
            "management-external-cert",
        ],
        REFUSED,
        MGMT,
    )
    .guard(FILE),
    Directive::class(
        &[
            "management-client",
            "management-forget-disconnect",
            "management-log-cache",
            "management-query-proxy",
            "management-query-remote",
            "management-signal",
            "management-up-down",
        ],
        REFUSED,
        MGMT,
    ),
];

const DETACH: &str =
    "would detach or change how the VPN process runs; the OxiVPN helper manages that";
