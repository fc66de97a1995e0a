//! From a parsed command line to the command's module, and from its outcome to the exit
//! status (78 when retrying cannot help).

use zone_io::Error;

use super::{
    command, ActivateArgs, ActivateInstallArgs, ActivateRequestArgs, ActivateStep, BackupCmd,
    BackupDrillArgs, BackupExportArgs, CaCmd, Cli, Cmd, QuotaCmd, RevokeArgs, SnapshotCmd,
    UndoArgs, ZoneCmd,
};
use crate::commands;

/// Runs the command the line names.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Cmd::Ca(CaCmd::Init(a)) => commands::ca_init::run(&a.zone, &a.out),
        Cmd::Ca(CaCmd::Rotate(a)) => commands::ca_rotation::begin(&a.ca.dir, &a.out),
        Cmd::Ca(CaCmd::Retire(a)) => commands::ca_rotation::retire(&a.ca.dir),
        Cmd::Ca(CaCmd::Admin(a)) => commands::ca_admin::run(&a.ca.dir, &a.out),
        Cmd::Trust(a) => commands::trust::run(&a.config.path, &a.ca, a.client_ca.as_deref()),
        Cmd::Activate(args) => activate(args),
        Cmd::Bootstrap(a) => commands::bootstrap::run(&a.ca.dir, &a.zone, &a.out),
        Cmd::Launch(a) => commands::launch::run(&a.config.path, a.dry_run, a.format.into()),
        Cmd::Join(a) => commands::join::run(&a.config.path, a.replace),
        Cmd::Leave(a) => commands::leave::run(&a.config.path, a.node.as_deref(), a.force),
        Cmd::Status(a) => commands::status::run(&a.config.path, a.json),
        Cmd::Maintain(a) => commands::maintain::run(&a.config.path, a.json, a.force),
        Cmd::Quota(QuotaCmd::Free(a)) => {
            commands::quota_free::run(&a.config.path, a.service.as_deref(), &a.prefix)
        }
        Cmd::Revoke(a) => revoke(a),
        Cmd::UpgradeEtcd(a) => {
            commands::upgrade_etcd::run(&a.config.path, a.target.to.as_deref(), a.target.cancel)
        }
        Cmd::Downgrade(a) => {
            commands::downgrade::run(&a.config.path, a.target.to.as_deref(), a.target.cancel)
        }
        Cmd::KeepRevocations(a) => zone_agent::keep(&a.config.path, a.watch.pid),
        Cmd::PromoteLearner(a) => {
            commands::promote_learner::run(&a.config.path, &a.member_id, a.watch.pid)
        }
        Cmd::Rotate(a) => commands::rotate::run(&a.config.path, a.if_due),
        Cmd::Check(a) => {
            commands::check::run(&a.config.path, a.output.format(), a.output.out.as_deref())
        }
        Cmd::IssueClient(a) => commands::issue_client::run(&a.config.path, &a.name, &a.out),
        Cmd::Env(a) => commands::env::run(
            &a.config.path,
            a.format.into(),
            a.service.as_deref(),
            a.gateway,
        ),
        Cmd::Zone(ZoneCmd::Sign(a)) => commands::zone_sign::run(&a.ca.dir, &a.zone, &a.out),
        Cmd::Zone(ZoneCmd::Publish(a)) => {
            commands::zone_publish::run(&a.ca.dir, &a.zone, &a.config.path)
        }
        Cmd::Zone(ZoneCmd::RaiseLevel(a)) => {
            commands::raise_level::run(&a.config.path, a.to, a.ca.dir.as_deref())
        }
        Cmd::Snapshot(SnapshotCmd::Save(a)) => {
            commands::snapshot::save(&a.config.path, a.out.as_deref(), a.keep, a.from_data)
        }
        Cmd::Snapshot(SnapshotCmd::List(a)) => commands::snapshot::list(&a.config.path, a.json),
        Cmd::Snapshot(SnapshotCmd::Prune(a)) => commands::snapshot::prune(&a.config.path, a.keep),
        Cmd::Backup(BackupCmd::Run(a)) => commands::backup::run(&a.config.path),
        Cmd::Backup(BackupCmd::Status(a)) => commands::backup::status::run(
            &a.config.path,
            a.output.format(),
            a.output.out.as_deref(),
        ),
        Cmd::Backup(BackupCmd::Drill(a)) => drill(a),
        Cmd::Backup(BackupCmd::Export(a)) => export(a),
        Cmd::Gateway(a) => commands::gateway::run(&a.config.path, a.format.into()),
        Cmd::Undo(a) => undo(a),
        Cmd::Restore(a) => commands::restore::run(&a.config.path, &a.from, a.force),
        Cmd::Demo(a) => commands::demo::run(&a.dir),
        Cmd::Completions(a) => {
            commands::generate::completions(command(), a.shell, &mut std::io::stdout())
        }
        Cmd::Man(a) => commands::generate::man_pages(command(), &a.out),
    }
}

/// `revoke`: one identity, or a node (clap requires one of --node and --identity).
fn revoke(a: &RevokeArgs) -> Result<(), Error> {
    let config = &a.config.path;
    match (&a.node, &a.identity) {
        (_, Some(identity)) => commands::revoke::run_identity(&a.ca.dir, identity, config),
        (Some(node), None) => commands::revoke::run(&a.ca.dir, node, config, &a.node_ca, a.force),
        (None, None) => Err(Error::new("nothing to revoke")
            .field("--node")
            .fix("give --node NODE_NAME or --identity CERT_FILE")),
    }
}

/// `undo`: from the node's own chain, or from a backup target with the owner's CA and
/// identity (clap requires both with --from).
fn undo(a: &UndoArgs) -> Result<(), Error> {
    let from = match (&a.from, &a.ca.dir, &a.identity) {
        (Some(url), Some(ca), Some(identity)) => Some(zone_backup::pitr::TargetAccess {
            url,
            endpoint: a.endpoint.as_deref(),
            region: a.region.as_deref(),
            ca,
            identity,
        }),
        _ => None,
    };
    commands::undo::run(&commands::undo::Undo {
        config: &a.config.path,
        prefix: &a.prefix,
        at: a.point.at.as_deref(),
        revision: a.point.revision,
        dry_run: a.dry_run,
        force: a.force,
        from,
    })
}

/// `backup drill`: the member's (--config), or the owner's on a target (--from, with
/// --ca and --identity).
fn drill(a: &BackupDrillArgs) -> Result<(), Error> {
    match (&a.config.path, &a.from, &a.ca.dir, &a.identity) {
        (Some(config), _, _, _) => commands::backup::drill::run(config),
        (None, Some(from), Some(ca), Some(identity)) => {
            commands::backup::drill_owner::run(&commands::backup::drill_owner::Owner {
                from,
                ca_dir: ca,
                identity,
                endpoint: a.s3.endpoint.as_deref(),
                region: a.s3.region.as_deref(),
            })
        }
        _ => Err(Error::new("give --config NODE_FILE (on a member), or --from TARGET_URL --ca CA_DIR --identity FILE (the owner's check)")
            .field("--from")),
    }
}

/// `backup export`: from a target or from the node's own chain.
fn export(a: &BackupExportArgs) -> Result<(), Error> {
    commands::backup::export::run(&commands::backup::export::Export {
        from: &a.from,
        at: a.point.at.as_deref(),
        revision: a.point.revision,
        out: &a.out,
        config: a.config.path.as_deref(),
        ca: a.ca.dir.as_deref(),
        identity: a.identity.as_deref(),
        endpoint: a.s3.endpoint.as_deref(),
        region: a.s3.region.as_deref(),
    })
}

/// `activate`: the node's steps, or the owner's form with --node or --request (clap
/// requires --ca, --zone, --out and one of those without a step).
fn activate(args: &ActivateArgs) -> Result<(), Error> {
    use commands::activate;
    let missing = |flag: &str| {
        Error::new("missing")
            .field(flag)
            .fix(format!("give {flag}"))
    };
    match &args.step {
        Some(ActivateStep::Request(ActivateRequestArgs { node, out })) => {
            activate::request::run(node, out)
        }
        Some(ActivateStep::Install(ActivateInstallArgs {
            request,
            answer,
            out,
        })) => activate::install::run(request, answer, out),
        None => {
            let ca = args.ca.dir.as_deref().ok_or_else(|| missing("--ca"))?;
            let zone = args.zone.as_deref().ok_or_else(|| missing("--zone"))?;
            let out = args.out.as_deref().ok_or_else(|| missing("--out"))?;
            let nameservice = args.nameservice.as_deref();
            match (&args.node, &args.request) {
                (Some(node), None) => activate::run(ca, zone, node, nameservice, out),
                (None, Some(request)) => activate::answer::run(ca, zone, request, nameservice, out),
                _ => Err(missing("--node").fix("give --node NODE_NAME or --request REQUEST_FILE")),
            }
        }
    }
}

/// The exit status of a command that failed and that retrying cannot help: the bundle,
/// the data directory or the cluster's membership needs a person first (a removed member,
/// another cluster's data, a config error). 78 is sysexits' EX_CONFIG; the member unit
/// names it in `RestartPreventExitStatus=` so systemd does not restart such a launch.
pub const EXIT_DO_NOT_RETRY: u8 = 78;

/// The exit status of a failed command: [`EXIT_DO_NOT_RETRY`] when the error says a
/// person must act first, 1 otherwise.
pub fn exit_code(err: &Error) -> u8 {
    if err.is_permanent() {
        EXIT_DO_NOT_RETRY
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_a_person_must_cure_exit_78() {
        assert_eq!(exit_code(&Error::new("no member answered")), 1);
        assert_eq!(
            exit_code(&Error::new("member was removed").permanent()),
            EXIT_DO_NOT_RETRY
        );
        // The units name the same status.
        let unit = include_str!("../../scripts/systemd/zone-etcd.service");
        assert!(unit.contains(&format!("RestartPreventExitStatus={EXIT_DO_NOT_RETRY}")));
        let template = include_str!("../../scripts/systemd/zone-etcd@.service");
        assert!(template.contains(&format!("RestartPreventExitStatus={EXIT_DO_NOT_RETRY}")));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn one_page_per_visible_command_and_completions_for_bash() {
        let dir = tempfile::tempdir().unwrap();
        commands::generate::man_pages(command(), dir.path()).unwrap();
        for page in [
            "zone-etcd.1",
            "zone-etcd-launch.1",
            "zone-etcd-snapshot-save.1",
            "zone-etcd-ca-init.1",
            "zone-etcd-completions.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.starts_with(".ie"), "{page} is roff: {text:.40}");
        }
        assert!(!dir.path().join("zone-etcd-promote-learner.1").exists());
        assert!(!dir.path().join("zone-etcd-man.1").exists());
        let launch = std::fs::read_to_string(dir.path().join("zone-etcd-launch.1")).unwrap();
        assert!(
            launch.contains("dry\\-run"),
            "the launch page lists --dry-run"
        );

        let mut out = Vec::new();
        commands::generate::completions(command(), clap_complete::Shell::Bash, &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("complete -F _zone__etcd"), "{script:.200}");
        assert!(script.contains("--dry-run"));
    }
}
