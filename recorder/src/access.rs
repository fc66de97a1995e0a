//! The least-privilege move of a running zone (`access-migrate`, guide "Moving a running
//! zone to least privilege"), under the recorder, in the guide's three steps:
//!
//! 1. identities beside the old trust: `[access]` (not enforced; `nodes = ["*"]`, the
//!    default of a zone made today) in the zone file, every
//!    member activated anew and its bundle installed over the old one (its state kept),
//!    restarted one at a time: each now has a signer and its client port trusts the
//!    client CA beside the zone root;
//! 2. the service's identity: `issue-client` on member 0 for the service the recorder
//!    plays (`cz`, read-write on the histories' prefix), and the recorder's credential
//!    files replaced by it (its clients take it at their next connection);
//! 3. enforcement: `enforce = true` in the zone file and every node.toml, members
//!    restarted one at a time; once the last runs enforced, the keepers turn auth on,
//!    and the scenario waits for `status` to say so.
//!
//! Invariants: one member at a time, each healthy (`status` exits 0) before the next;
//! every bundle replaced is moved aside (`*.before-access`), never deleted.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::faults::HEAL;
use crate::membership::wait_status_ok;
use crate::shared::Control;
use crate::zone::LocalZone;

/// The policy: what a zone `ca init` makes gets by default (`nodes = ["*"]`: every node
/// of the zone its own prefix), and the recorder's service, on member 0 (node1), owning
/// the histories' keys.
fn policy(zone: &LocalZone) -> String {
    format!(
        "\n[access]\nnodes = [\"*\"]\n\n[[access.service]]\nname = \"cz\"\nnodes = [\"{}\"]\nread_write = [\"cz/\"]\n",
        zone.members[0].0
    )
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn append(path: &std::path::Path, text: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, old + text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Step 1.
pub fn identities(zone: &mut LocalZone) -> Result<String, String> {
    let zone_file = zone.path().join("zone.toml");
    append(&zone_file, &policy(zone))?;
    for i in 0..zone.members.len() {
        let bundle = zone.path().join(format!("access-bundle-{i}"));
        crate::membership::activate(zone, &zone.path().join("ca"), &zone_file, i, &bundle)?;
        let dir = zone.node_dir(i);
        for part in ["pki", "node.toml"] {
            std::fs::rename(dir.join(part), dir.join(format!("{part}.before-access")))
                .and_then(|()| std::fs::rename(bundle.join(part), dir.join(part)))
                .map_err(|e| format!("{}: {e}", dir.join(part).display()))?;
        }
        zone.terminate(i)?;
        zone.launch(i)?;
        zone.wait_healthy(HEAL)?;
        wait_status_ok(zone, i)?;
    }
    Ok("access step 1: signers and the client CA beside the zone root, rolling restart".into())
}

/// Step 2 (the recorder's clients then reconnect with the new files, as the guide has
/// the services restart).
pub fn service(zone: &mut LocalZone, control: &Control) -> Result<String, String> {
    let out = zone.path().join("cz-identity");
    zone.on(0, &["issue-client", "--name", "cz", "--out", &s(&out)])?;
    let to = zone.path().join("recorder-tls");
    for file in ["client.key", "client.crt"] {
        let tmp = to.join(format!("{file}.new"));
        std::fs::copy(out.join(file), &tmp)
            .and_then(|_| std::fs::rename(&tmp, to.join(file)))
            .map_err(|e| format!("{}: {e}", to.join(file).display()))?;
    }
    control.reconnect.fetch_add(1, Ordering::SeqCst);
    Ok(format!(
        "access step 2: the recorder is cz@{}",
        zone.members[0].0
    ))
}

/// Step 3.
pub fn enforce(zone: &mut LocalZone) -> Result<String, String> {
    let enforce = |path: &std::path::Path| -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !text.contains("\n[access]\n") {
            return Err(format!("{}: no [access] table", path.display()));
        }
        let text = text.replacen("\n[access]\n", "\n[access]\nenforce = true\n", 1);
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    enforce(&zone.path().join("zone.toml"))?;
    for i in 0..zone.members.len() {
        enforce(&zone.config(i))?;
        zone.terminate(i)?;
        zone.launch(i)?;
        zone.wait_healthy(HEAL)?;
        wait_status_ok(zone, i)?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out) = zone.on_any(0, &["status", "--json"])?;
        let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        if json["access"]["enforced"] == true {
            return Ok("access step 3: enforced, rolling restart, auth on".into());
        }
        if Instant::now() > deadline {
            return Err(format!("auth not on 30 s after the last restart: {json}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
