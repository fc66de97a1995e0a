//! One module per command. Each `run` validates all its input before it writes anything,
//! and writes through staging directories or atomic renames, so a failure changes nothing.
//!
//! Commands sit on top: nothing outside `commands/` (but the CLI's dispatch) uses them,
//! and a command does not reach into another's internals for what several need: the
//! checks before etcd starts are [`zone_node::preflight`], reaching the cluster is
//! [`zone_node::reach`], detached helpers are [`zone_node::detached`], the CA directory's files
//! are [`zone_node::ca_dir`]. A command imports no other command (`tests/module_circles/`
//! holds it): what two share lives below them, in a module named for what it is. The one
//! exception is `demo`, a script of the owner's commands, which calls their `run`.

pub mod activate;
pub mod backup;
pub mod bootstrap;
pub mod ca_admin;
pub mod ca_init;
pub mod ca_rotation;
pub mod check;
pub mod demo;
pub mod downgrade;
pub mod env;
pub mod gateway;
pub mod generate;
pub mod issue_client;
pub mod join;
pub mod launch;
pub mod leave;
pub mod maintain;
pub mod promote_learner;
pub mod quota_free;
pub mod raise_level;
pub mod restore;
pub mod revoke;
pub mod rotate;
pub mod snapshot;
pub mod status;
pub mod trust;
pub mod undo;
pub mod upgrade_etcd;
pub mod zone_publish;
pub mod zone_sign;
