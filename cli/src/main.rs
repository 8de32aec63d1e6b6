//! `oxivpnctl`: OxiVPN from a terminal.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod check_cmd;
mod credentials;
mod import_server;
mod lockdown_cmd;
mod output;
mod profile_check;
mod profile_cmds;
mod profiles;
mod session_cmds;
mod sign_in;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::Out;

#[derive(Parser, Debug)]
#[command(name = "oxivpnctl", version, about)]
struct Args {
    /// The helper's socket.
    #[arg(long, global = true, env = ipc::SOCKET_ENV)]
    socket: Option<PathBuf>,
    /// Machine-readable output: one JSON value per result.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import a .ovpn file (files it names are read now and inlined), or download one
    /// with --url or from an OpenVPN Access Server with --access-server.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["file", "url", "access_server"])))]
    Import {
        file: Option<PathBuf>,
        /// Download the profile from this https:// address (certificate verified).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Download your profile from this OpenVPN Access Server (HOST, HOST:PORT or
        /// https://HOST) with your user name and password.
        #[arg(long, value_name = "HOST")]
        access_server: Option<String>,
        /// Access Server user name (default: asked on the terminal).
        #[arg(long, requires = "access_server")]
        user: Option<String>,
        /// Access Server password on the first line of FILE (default: asked on the
        /// terminal; never on the command line).
        #[arg(long, value_name = "FILE", requires = "access_server")]
        password_file: Option<PathBuf>,
        /// The answer to the server's second-factor question, first line of FILE
        /// (default: asked on the terminal).
        #[arg(long, value_name = "FILE", requires = "access_server")]
        challenge_answer_file: Option<PathBuf>,
        /// The autologin profile (connects without a password), if the server allows it.
        #[arg(long, requires = "access_server")]
        autologin: bool,
        /// Profile name (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
        /// A file the profile names, from elsewhere: NAME as the profile writes it
        /// (or its bare file name), PATH where it is. Repeatable.
        #[arg(long = "file", value_name = "NAME=PATH", value_parser = profiles::parse_supplied)]
        files: Vec<profile_store::Supplied>,
    },
    /// Stored profiles and their sessions.
    List,
    /// Connect a stored profile; waits until connected or failed.
    Connect {
        name: String,
        /// Return as soon as the session is started.
        #[arg(long)]
        no_wait: bool,
        /// User name and password, one per line (instead of asking).
        #[arg(long)]
        auth_file: Option<PathBuf>,
        /// The private key's (or PKCS#12 archive's) passphrase, on the first line
        /// (instead of asking on the terminal).
        #[arg(long)]
        key_passphrase_file: Option<PathBuf>,
        /// Proxy (http-proxy / socks-proxy) user name and password, one per line.
        #[arg(long)]
        proxy_auth_file: Option<PathBuf>,
        /// Give up (and disconnect) after this many seconds; 0 = wait forever.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Leak protection: `default` = on when all traffic goes through the tunnel.
        #[arg(long, value_enum, default_value_t = session_cmds::KillSwitchArg::Default)]
        kill_switch: session_cmds::KillSwitchArg,
        /// With the kill switch on, still allow the directly attached subnets.
        #[arg(long)]
        allow_lan: bool,
        /// When the server asks for a browser sign-in, print the link but open nothing
        /// (default: open it with $BROWSER or the desktop's opener).
        #[arg(long)]
        no_browser: bool,
    },
    /// Disconnect the session of profile NAME, or all of yours.
    Disconnect {
        name: Option<String>,
        #[arg(long)]
        no_wait: bool,
    },
    /// The helper and its sessions.
    Status,
    /// Stage changes and log lines of your sessions.
    Logs {
        /// Only this profile's session.
        name: Option<String>,
        /// Keep printing new lines until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
    },
    /// Which way a packet to ADDR would go.
    RouteCheck { addr: IpAddr },
    /// The routes the session of profile NAME (default: your only session) put in place.
    Routes { name: Option<String> },
    /// Check for leaks: where internet traffic and DNS go, the kill switch, the routes
    /// to the VPN server and the DHCP server, and a probe through the tunnel. Contacts
    /// no third party. Exit status 2 when a check fails.
    Check {
        /// The session of this profile (default: your connected session).
        name: Option<String>,
    },
    /// Work with .ovpn files (no helper needed).
    #[command(subcommand)]
    Profile(profile_check::ProfileCommand),
    /// Lockdown: block all traffic while no VPN is connected (machine wide).
    #[command(subcommand)]
    Lockdown(lockdown_cmd::LockdownCommand),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let out = Out { json: args.json };
    let socket = args.socket.clone().unwrap_or_else(ipc::default_socket_path);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&anyhow::Error::new(e).context("starting the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match args.command {
            Command::Import {
                file,
                url,
                access_server,
                user,
                password_file,
                challenge_answer_file,
                autologin,
                name,
                files,
            } => {
                let source = match (file, url, access_server) {
                    (Some(file), _, _) => {
                        return profile_cmds::import(out, &file, name.as_deref(), &files)
                    }
                    (None, Some(url), _) => import_server::Source::Url(url),
                    (None, None, Some(server)) => import_server::Source::AccessServer {
                        server,
                        user,
                        password_file,
                        challenge_answer_file,
                        autologin,
                    },
                    (None, None, None) => anyhow::bail!("name a FILE, --url or --access-server"),
                };
                if !files.is_empty() {
                    anyhow::bail!("--file is for a profile file; a downloaded profile must hold its files inline");
                }
                import_server::import(out, source, name.as_deref()).await
            }
            Command::List => profile_cmds::list(&socket, out).await,
            Command::Connect {
                name,
                no_wait,
                auth_file,
                key_passphrase_file,
                proxy_auth_file,
                timeout,
                kill_switch,
                allow_lan,
                no_browser,
            } => {
                let a = session_cmds::ConnectArgs {
                    name,
                    no_wait,
                    auth_file,
                    key_passphrase_file,
                    proxy_auth_file,
                    timeout,
                    options: ipc::ConnectOptions {
                        kill_switch: kill_switch.into(),
                        allow_lan,
                    },
                    no_browser,
                };
                session_cmds::connect(&socket, out, a).await
            }
            Command::Disconnect { name, no_wait } => {
                session_cmds::disconnect(&socket, out, name.as_deref(), no_wait).await
            }
            Command::Status => session_cmds::status(&socket, out).await,
            Command::Logs { name, follow } => {
                session_cmds::logs(&socket, out, name.as_deref(), follow).await
            }
            Command::RouteCheck { addr } => session_cmds::route_check(&socket, out, addr).await,
            Command::Routes { name } => session_cmds::routes(&socket, out, name.as_deref()).await,
            Command::Check { name } => check_cmd::check(&socket, out, name.as_deref()).await,
            Command::Profile(cmd) => profile_check::run(cmd, out.json),
            Command::Lockdown(cmd) => lockdown_cmd::run(&socket, out, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            ExitCode::FAILURE
        }
    }
}
