//! Commands on the user's stored profiles: import, list.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::output::{self, Out};
use crate::{profiles, session_cmds};

pub fn import(
    out: Out,
    file: &Path,
    name: Option<&str>,
    supplied: &[profile_store::Supplied],
) -> anyhow::Result<ExitCode> {
    let imported = profiles::import(file, name, supplied)?;
    print_imported(out, &imported);
    Ok(ExitCode::SUCCESS)
}

/// The import report, the same for a file and a download.
pub fn print_imported(out: Out, imported: &profiles::Imported) {
    let refused = imported.report.refused_count();
    out.result(
        &json!({
            "imported": imported.name,
            "report": imported.report,
            "credentials_found": imported.had_credentials,
            "credentials_stored": false,
            "key_passphrase_found": imported.had_key_passphrase,
            "key_passphrase_stored": false,
        }),
        || {
            let mut s = format!("imported {:?}\n", imported.name);
            s.push_str(&imported.report.to_text());
            if refused > 0 {
                s.push_str(&format!(
                    "{refused} directive(s) were dropped: OxiVPN never runs scripts or plugins\n"
                ));
            }
            if imported.had_credentials {
                s.push_str(
                    "the profile came with a user name/password: not stored (keyring support comes later); \
                     `oxivpnctl connect` will ask for them, or pass --auth-file\n",
                );
            }
            if imported.had_key_passphrase {
                s.push_str(
                    "the profile's askpass file held the private key's passphrase: not stored; \
                     `oxivpnctl connect` will ask for it, or pass --key-passphrase-file\n",
                );
            }
            if imported.had_proxy_credentials {
                s.push_str(
                    "the profile came with a proxy user name/password: not stored; \
                     `oxivpnctl connect` will ask for them, or pass --proxy-auth-file\n",
                );
            }
            s
        },
    );
}

pub async fn list(socket: &Path, out: Out) -> anyhow::Result<ExitCode> {
    let names = profiles::list()?;
    // Session states are a bonus: a stopped helper must not hide the profiles.
    let sessions = match session_cmds::link(socket).await {
        Ok(c) => c
            .list_sessions()
            .await
            .ok()
            .map(|s| (c.server_hello().peer_uid, s)),
        Err(_) => None,
    };
    let state_of = |name: &str| -> Option<&ipc::SessionInfo> {
        let (uid, list) = sessions.as_ref()?;
        list.iter().find(|s| {
            s.owner_uid == *uid && s.profile_name.as_ref().is_some_and(|p| p.as_str() == name)
        })
    };
    let rows: Vec<_> = names
        .iter()
        .map(|n| json!({ "name": n, "session": state_of(n) }))
        .collect();
    out.result(
        &json!({ "profiles": rows, "helper_reachable": sessions.is_some() }),
        || {
            let mut s = String::new();
            if names.is_empty() {
                s.push_str("no profiles (import one with `oxivpnctl import FILE`)\n");
            }
            for n in &names {
                match state_of(n) {
                    Some(sess) => s.push_str(&format!(
                        "{n:<24}{} ({})\n",
                        output::stage(&sess.stage),
                        sess.id
                    )),
                    None => s.push_str(&format!("{n}\n")),
                }
            }
            if sessions.is_none() {
                s.push_str("(helper not reachable: session states unknown)\n");
            }
            s
        },
    );
    Ok(ExitCode::SUCCESS)
}
