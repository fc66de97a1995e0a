//! From a parsed command line to the command's module, and from its outcome to the exit
//! status (78 when retrying cannot help).

use zone_io::Error;

use super::{
    command, ActivateArgs, ActivateStep, BackupCmd, CaCmd, Cli, Cmd, SnapshotCmd, ZoneCmd,
};
use crate::commands;

/// Runs the command the line names.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Cmd::Ca(CaCmd::Init { zone, out }) => commands::ca_init::run(zone, out),
        Cmd::Ca(CaCmd::Rotate { ca, out }) => commands::ca_rotation::begin(ca, out),
        Cmd::Ca(CaCmd::Retire { ca }) => commands::ca_rotation::retire(ca),
        Cmd::Ca(CaCmd::Admin { ca, out }) => commands::ca_admin::run(ca, out),
        Cmd::Trust {
            config,
            ca,
            client_ca,
        } => commands::trust::run(config, ca, client_ca.as_deref()),
        Cmd::Activate(args) => activate(args),
        Cmd::Bootstrap { ca, zone, out } => commands::bootstrap::run(ca, zone, out),
        Cmd::Launch {
            config,
            dry_run,
            format,
        } => commands::launch::run(config, *dry_run, *format),
        Cmd::Join { config, replace } => commands::join::run(config, *replace),
        Cmd::Leave {
            config,
            node,
            force,
        } => commands::leave::run(config, node.as_deref(), *force),
        Cmd::Status { config, json } => commands::status::run(config, *json),
        Cmd::Maintain {
            config,
            json,
            force,
        } => commands::maintain::run(config, *json, *force),
        Cmd::Revoke {
            ca,
            node,
            identity,
            config,
            node_ca,
            force,
        } => match (node, identity) {
            (_, Some(identity)) => commands::revoke::run_identity(ca, identity, config),
            (Some(node), None) => commands::revoke::run(ca, node, config, node_ca, *force),
            (None, None) => Err(zone_io::Error::new("nothing to revoke")
                .field("--node")
                .fix("give --node NODE_NAME or --identity CERT_FILE")),
        },
        Cmd::UpgradeEtcd { config, to, cancel } => {
            commands::upgrade_etcd::run(config, to.as_deref(), *cancel)
        }
        Cmd::Downgrade { config, to, cancel } => {
            commands::downgrade::run(config, to.as_deref(), *cancel)
        }
        Cmd::KeepRevocations {
            config,
            watch_pid,
        } => crate::agent::keep(config, *watch_pid),
        Cmd::PromoteLearner {
            config,
            member_id,
            watch_pid,
        } => commands::promote_learner::run(config, member_id, *watch_pid),
        Cmd::Rotate { config, if_due } => commands::rotate::run(config, *if_due),
        Cmd::Check {
            config,
            json,
            format,
            out,
        } => {
            let format = if *json {
                commands::check::CheckFormat::Json
            } else {
                *format
            };
            commands::check::run(config, format, out.as_deref())
        }
        Cmd::IssueClient { config, name, out } => commands::issue_client::run(config, name, out),
        Cmd::Env {
            config,
            format,
            service,
            gateway,
        } => commands::env::run(config, *format, service.as_deref(), *gateway),
        Cmd::Zone(ZoneCmd::Sign { ca, zone, out }) => commands::zone_sign::run(ca, zone, out),
        Cmd::Zone(ZoneCmd::Publish { ca, zone, config }) => {
            commands::zone_publish::run(ca, zone, config)
        }
        Cmd::Snapshot(SnapshotCmd::Save {
            config,
            out,
            keep,
            from_data,
        }) => commands::snapshot::save(config, out.as_deref(), *keep, *from_data),
        Cmd::Backup(BackupCmd::Run { config }) => commands::backup::run(config),
        Cmd::Backup(BackupCmd::Status {
            config,
            json,
            format,
            out,
        }) => {
            let format = if *json {
                commands::check::CheckFormat::Json
            } else {
                *format
            };
            commands::backup::status::run(config, format, out.as_deref())
        }
        Cmd::Backup(BackupCmd::Export {
            from,
            at,
            revision,
            out,
            config,
            ca,
            identity,
            endpoint,
            region,
        }) => commands::backup::export::run(&commands::backup::export::Export {
            from,
            at: at.as_deref(),
            revision: *revision,
            out,
            config: config.as_deref(),
            ca: ca.as_deref(),
            identity: identity.as_deref(),
            endpoint: endpoint.as_deref(),
            region: region.as_deref(),
        }),
        Cmd::Gateway { config, format } => commands::gateway::run(config, *format),
        Cmd::Undo {
            config,
            prefix,
            at,
            revision,
            dry_run,
            force,
            from,
            ca,
            identity,
            endpoint,
            region,
        } => commands::undo::run(&commands::undo::Undo {
            config,
            prefix,
            at: at.as_deref(),
            revision: *revision,
            dry_run: *dry_run,
            force: *force,
            from: match (from, ca, identity) {
                (Some(url), Some(ca), Some(identity)) => Some(crate::backup::pitr::TargetAccess {
                    url,
                    endpoint: endpoint.as_deref(),
                    region: region.as_deref(),
                    ca,
                    identity,
                }),
                _ => None,
            },
        }),
        Cmd::Backup(BackupCmd::Drill {
            config,
            from,
            ca,
            identity,
            endpoint,
            region,
        }) => match (config, from, ca, identity) {
            (Some(config), _, _, _) => commands::backup::drill::run(config),
            (None, Some(from), Some(ca), Some(identity)) => {
                commands::backup::drill_owner::run(&commands::backup::drill_owner::Owner {
                    from,
                    ca_dir: ca,
                    identity,
                    endpoint: endpoint.as_deref(),
                    region: region.as_deref(),
                })
            }
            _ => Err(zone_io::Error::new("give --config NODE_FILE (on a member), or --from TARGET_URL --ca CA_DIR --identity FILE (the owner's check)")
                .field("--from")),
        },
        Cmd::Snapshot(SnapshotCmd::List { config, json }) => {
            commands::snapshot::list(config, *json)
        }
        Cmd::Snapshot(SnapshotCmd::Prune { config, keep }) => {
            commands::snapshot::prune(config, *keep)
        }
        Cmd::Restore {
            config,
            from,
            force,
        } => commands::restore::run(config, from, *force),
        Cmd::Demo { dir } => commands::demo::run(dir),
        Cmd::Completions { shell } => {
            commands::generate::completions(command(), *shell, &mut std::io::stdout())
        }
        Cmd::Man { out } => commands::generate::man_pages(command(), out),
    }
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
        Some(ActivateStep::Request { node, out }) => activate::request::run(node, out),
        Some(ActivateStep::Install {
            request,
            answer,
            out,
        }) => activate::install::run(request, answer, out),
        None => {
            let ca = args.ca.as_deref().ok_or_else(|| missing("--ca"))?;
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
