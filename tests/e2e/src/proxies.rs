//! Real proxies on the server side of the lab (namespace `srv`, address
//! [`addr::SERVER`]): Debian's squid for HTTP `CONNECT` with Basic authentication
//! (`basic_ncsa_auth` over an htpasswd file written here), and dante (`danted`) for
//! SOCKS5 with user name/password (RFC 1929).
//!
//! Dante's `socksmethod: username` checks the system's users. Nothing on the machine is
//! changed for that: danted runs in its own mount namespace where copies of
//! `/etc/passwd` and `/etc/shadow` with one extra user are bind-mounted over the real
//! ones.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::lab::{addr, Lab, Role};

/// Port squid listens on.
pub const SQUID_PORT: u16 = 3128;
/// Port danted listens on.
pub const DANTE_PORT: u16 = 1080;
/// The system user dante authenticates (exists only inside danted's mount namespace).
pub const DANTE_USER: &str = "oxiproxy";

fn openssl_passwd(flag: &str, password: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("openssl")
        .args(["passwd", flag, password])
        .output()
        .context("running openssl passwd")?;
    if !out.status.success() {
        bail!(
            "openssl passwd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// Whether squid and danted are installed (`cargo xtask deps` installs them).
pub fn proxies_available() -> bool {
    which("squid").is_some()
        && which("danted").is_some()
        && Path::new("/usr/lib/squid/basic_ncsa_auth").exists()
}

/// A folder in the lab that squid's unprivileged user can read and write.
fn open_dir(lab: &Lab, name: &str) -> anyhow::Result<PathBuf> {
    // The lab folder is 0700; squid drops to its own user and must get through it.
    std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o711))?;
    let d = lab.dir().join(name);
    std::fs::create_dir_all(&d)?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777))?;
    Ok(d)
}

/// Waits until something listens on `port` in `srv`.
fn wait_listening(lab: &Lab, port: u16, what: &str, log: &Path, conf: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = lab
            .ns(Role::Srv)?
            .cmd("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .context("running ss")?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let c = std::fs::read_to_string(conf).unwrap_or_default();
            bail!("{what} did not listen on port {port} within 20 s; its log:\n{text}\nits configuration:\n{c}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Lab {
    /// squid on [`addr::SERVER`]:[`SQUID_PORT`] allowing `CONNECT` only to users of an
    /// htpasswd file holding `user`/`password`. Returns the port; the lab stops squid.
    pub fn start_squid(&mut self, user: &str, password: &str) -> anyhow::Result<u16> {
        let d = open_dir(self, "squid")?;
        let htpasswd = d.join("htpasswd");
        std::fs::write(
            &htpasswd,
            format!("{user}:{}\n", openssl_passwd("-apr1", password)?),
        )?;
        std::fs::set_permissions(&htpasswd, std::fs::Permissions::from_mode(0o644))?;
        let conf = d.join("squid.conf");
        let dir = d.display();
        std::fs::write(
            &conf,
            format!(
                "http_port {server}:{SQUID_PORT}\n\
                 pid_filename none\n\
                 cache_log {dir}/cache.log\n\
                 access_log stdio:{dir}/access.log\n\
                 cache deny all\n\
                 coredump_dir {dir}\n\
                 shutdown_lifetime 0 seconds\n\
                 auth_param basic program /usr/lib/squid/basic_ncsa_auth {htpasswd}\n\
                 auth_param basic children 2\n\
                 auth_param basic realm oxivpn-lab\n\
                 acl authed proxy_auth REQUIRED\n\
                 http_access allow authed\n\
                 http_access deny all\n",
                server = addr::SERVER,
                htpasswd = htpasswd.display(),
            ),
        )?;
        let conf_s = conf.display().to_string();
        self.spawn_kept(Role::Srv, &["squid", "-N", "-f", &conf_s], "squid")?;
        wait_listening(self, SQUID_PORT, "squid", &d.join("cache.log"), &conf)?;
        Ok(SQUID_PORT)
    }

    /// danted on [`addr::SERVER`]:[`DANTE_PORT`] with `socksmethod: username` (TCP
    /// `CONNECT` and `UDP ASSOCIATE`), user [`DANTE_USER`] with `password`.
    pub fn start_dante(&mut self, password: &str) -> anyhow::Result<u16> {
        let d = open_dir(self, "dante")?;
        let passwd = d.join("passwd");
        let shadow = d.join("shadow");
        let mut pw = std::fs::read_to_string("/etc/passwd")?;
        pw.push_str(&format!(
            "{DANTE_USER}:x:64999:64999::/nonexistent:/usr/sbin/nologin\n"
        ));
        std::fs::write(&passwd, pw)?;
        let mut sh = std::fs::read_to_string("/etc/shadow")?;
        sh.push_str(&format!(
            "{DANTE_USER}:{}:19000:0:99999:7:::\n",
            openssl_passwd("-6", password)?
        ));
        std::fs::write(&shadow, sh)?;
        std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o600))?;
        let conf = d.join("danted.conf");
        let log = d.join("danted.log");
        std::fs::write(
            &conf,
            format!(
                "logoutput: {log}\n\
                 internal: {server} port = {DANTE_PORT}\n\
                 external: {server}\n\
                 clientmethod: none\n\
                 socksmethod: username\n\
                 user.privileged: root\n\
                 user.unprivileged: nobody\n\
                 client pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect udpassociate udpreply }}\n",
                log = log.display(),
                server = addr::SERVER,
            ),
        )?;
        // Only danted's own mount namespace sees the extra user.
        let script = format!(
            "mount --bind {passwd} /etc/passwd && mount --bind {shadow} /etc/shadow && exec danted -f {conf}",
            passwd = passwd.display(),
            shadow = shadow.display(),
            conf = conf.display(),
        );
        self.spawn_kept(
            Role::Srv,
            &[
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ],
            "danted",
        )?;
        wait_listening(self, DANTE_PORT, "danted", &log, &conf)?;
        Ok(DANTE_PORT)
    }
}
