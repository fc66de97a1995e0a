//! A service's password for etcd's JSON gateway (issue 48, item 5): HTTP clients
//! (Patroni, curl) cannot use a certificate's CN once etcd's auth is on — the gateway
//! authenticates only by the token `/v3/auth/authenticate` gives for a user's password.
//!
//! The password is born on the service's node (`env --service NAME --gateway`), kept there
//! 0600 beside the service's identity ([`FILE`]), and set on the service's etcd user by a
//! member: the node sends it over the identity endpoint's mutual TLS
//! (`POST /v1/gateway?name=<service>`, granted exactly as the service's identity is); the
//! member marks the user at [`MARKS_PREFIX`]`<user>` and sets the password with etcd's root
//! (etcd keeps only its bcrypt hash). A member with a signer sets its own services'
//! passwords through its own etcd.
//!
//! Invariants:
//! - a password is set only while etcd's auth is on, when only root can change a user:
//!   the keeper that turns auth on asks every user about a password right after and makes
//!   again each one found with one, so one planted while every client was root outlives
//!   auth on by that apply's seconds only; and it deletes the marks written while auth
//!   was off (every mark just before `AuthEnable`, and those whose revision is not after
//!   the one etcd gave `AuthEnable` just after), so a mark planted then gives nothing (a
//!   mark only lets a password that root set stand: [`crate::policy::passwords`]);
//! - a user with a password and no mark is made again by the keepers (item 3): the marks
//!   are read after the passwords are asked about, and a member writes the mark before it
//!   sets the password, so a password being set is never taken for a planted one;
//! - a revoked node's users are deleted, their passwords with them (and the gateway's
//!   TLS handshake refuses the node's certificates anyway);
//! - the password is never printed, logged or sent anywhere but to a member's endpoint;
//!   `env` names its file. It stays the same across identity renewals, and is set again
//!   (the same one) whenever etcd no longer takes it.

use super::wire::USER_WAIT;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Client, UserAddOptions};
use zone_io::Error;
use zone_io::KEY_MODE;

use zone_etcd_kit::cluster_api::{self, Credentials, EtcdError, Kind};
use zone_model::leaf_paths::LeafPaths;

/// Under it, `<user>` for each user whose password a member set for the gateway.
pub const MARKS_PREFIX: &str = "zone-etcd/access/passwords/";
/// The password's file in the service's directory (`<state>/services/<name>/`).
pub const FILE: &str = "gateway-password";
/// How long `env --gateway` waits for etcd's auth to go on (a zone just made).
pub const AUTH_WAIT: Duration = Duration::from_secs(30);

/// 32 random bytes in URL-safe base64 without padding (43 characters): a password that
/// needs no quoting in YAML, shells or JSON. Never written but to its file, never printed.
pub fn new_password() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes())
}

/// 32 random bytes, base64: a password nobody knows (never written or printed), for
/// the keepers' questions and `root`.
pub fn random_password() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(random_bytes())
}

fn random_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    // The system's generator does not fail on Linux; were it to, the password would be
    // all zeros plus the clock: still nothing a planted one could be.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes[..16].copy_from_slice(&now.to_le_bytes());
    }
    bytes
}

/// Whether `password` is one [`new_password`] makes (the endpoint takes nothing else).
pub fn well_formed(password: &str) -> bool {
    (43..=128).contains(&password.len())
        && password
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What etcd answered to a user and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The password is the user's.
    Taken,
    /// The user has another password (or does not exist): etcd's `ErrAuthFailed`.
    Wrong,
    /// The user has no password: etcd's `ErrNoPasswordUser`, before any comparison.
    NoPassword,
    /// Auth is off: etcd answers nothing about passwords.
    AuthOff,
}

/// Asks etcd whether `password` is `user`'s.
pub async fn ask(client: &mut Client, user: &str, password: &str) -> Result<Answer, String> {
    let refused = match client
        .auth_client()
        .authenticate(user.to_string(), password.to_string())
        .await
    {
        Ok(_) => return Ok(Answer::Taken),
        Err(e) => EtcdError::of(&e),
    };
    match refused.kind() {
        Kind::AuthFailed => Ok(Answer::Wrong),
        Kind::AuthNotEnabled => Ok(Answer::AuthOff),
        Kind::NoPasswordUser => Ok(Answer::NoPassword),
        // The auth store changing meanwhile (AuthOldRevision) says nothing of the password.
        _ => Err(format!("authenticate {user}: {refused}")),
    }
}

/// The users marked at [`MARKS_PREFIX`]: those whose password a member set.
pub async fn marked(client: &Client) -> Result<BTreeSet<String>, String> {
    super::ledger::marked(client, MARKS_PREFIX).await
}

/// Why a member did not set a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSet {
    /// Etcd's auth is not on yet: ask again shortly.
    AuthOff,
    /// Anything else, in one line.
    Failed(String),
}

/// A member's side: marks `user` and sets its password through the member's own etcd at
/// `endpoint` (its client identity in `leaves`, etcd's root under the policy). Blocking.
pub fn set(endpoint: &str, leaves: &LeafPaths, user: &str, password: &str) -> Result<(), NotSet> {
    let failed = |e: String| NotSet::Failed(e);
    let creds = Credentials::load(leaves).map_err(|e| failed(e.to_string()))?;
    let runtime = cluster_api::runtime().map_err(|e| failed(e.to_string()))?;
    runtime.block_on(async {
        let mut client = cluster_api::connect(endpoint, &creds)
            .await
            .map_err(failed)?;
        if ask(&mut client, user, password).await.map_err(failed)? == Answer::AuthOff {
            return Err(NotSet::AuthOff);
        }
        let mark = format!("{MARKS_PREFIX}{user}");
        let mark = mark.as_str();
        cluster_api::ask(&client, |mut c| async move {
            c.put(mark, super::ledger::MARK, None).await
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + USER_WAIT;
        loop {
            let step = match ask(&mut client, user, password).await.map_err(failed)? {
                Answer::Taken => return Ok(()),
                Answer::AuthOff => return Err(NotSet::AuthOff),
                // etcd keeps a user made without a password so for good: it is made
                // again with one, its roles granted again.
                Answer::NoPassword => remake(&mut client, user, password).await,
                // Another password, or no such user yet.
                Answer::Wrong => {
                    cluster_api::within(async {
                        client
                            .user_change_password(user.to_string(), password.to_string())
                            .await
                            .map(drop)
                            .map_err(EtcdError::from)
                    })
                    .await
                }
            };
            match step {
                Ok(()) => {}
                // The keepers make the user from the policy within a round, and may make
                // it again (without a password) between our delete and add.
                Err(e) if tokio::time::Instant::now() < deadline && retry(&e) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(failed(format!("setting the password of {user}: {e}"))),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(failed(format!(
                    "the password of {user} did not hold within {USER_WAIT:?}"
                )));
            }
        }
    })
}

/// Makes `user` again with `password` and the roles it had.
async fn remake(client: &mut Client, user: &str, password: &str) -> Result<(), EtcdError> {
    let describe = EtcdError::from;
    cluster_api::within(async {
        let roles = client
            .user_get(user)
            .await
            .map_err(describe)?
            .roles()
            .to_vec();
        client.user_delete(user).await.map_err(describe)?;
        client
            .user_add(user, password, Some(UserAddOptions::new()))
            .await
            .map_err(describe)?;
        for role in roles {
            client.user_grant_role(user, role).await.map_err(describe)?;
        }
        Ok(())
    })
    .await
}

/// Whether a failed step may go through when asked again: the user is not made yet, a
/// keeper made it between our delete and add, or the auth store changed while the call
/// was in flight.
fn retry(e: &EtcdError) -> bool {
    matches!(
        e.kind(),
        Kind::UserNotFound | Kind::UserAlreadyExists | Kind::AuthOldRevision
    )
}

/// The password in `dir`'s [`FILE`], made (0600, atomically) when missing or not one
/// [`new_password`] makes. Run under the node's state lock.
pub fn load_or_make(dir: &Path) -> Result<(PathBuf, String), Error> {
    let file = dir.join(FILE);
    let password = match zone_io::read_text(&file) {
        Ok(text) if well_formed(text.trim()) => text.trim().to_string(),
        _ => {
            let password = new_password();
            zone_io::write_atomic(&file, password.as_bytes(), KEY_MODE)?;
            password
        }
    };
    Ok((file, password))
}

/// A new password in `dir`'s [`FILE`] (0600, atomically), in place of the one there: the
/// old one is never set again once etcd stopped taking it (the owner revoked the gateway
/// certificate or changed the password: a leaked one stays ended). Run under the node's
/// state lock.
pub fn replace(dir: &Path) -> Result<String, Error> {
    let password = new_password();
    zone_io::write_atomic(&dir.join(FILE), password.as_bytes(), KEY_MODE)?;
    Ok(password)
}

/// A node's side: what etcd at `endpoints` answers to `user` and `password`, asked with
/// the service's gateway certificate in `creds`. Blocking.
pub fn check(
    endpoints: &[String],
    creds: &Credentials,
    user: &str,
    password: &str,
) -> Result<Answer, Error> {
    let runtime = cluster_api::runtime()?;
    runtime
        .block_on(async {
            let mut client =
                cluster_api::connect_many(endpoints, creds, cluster_api::CALL_DEADLINE).await?;
            cluster_api::within(ask(&mut client, user, password)).await
        })
        .map_err(|e| {
            Error::new(format!("the zone's etcd did not answer for {user}: {e}"))
                .fix("check that the members run (zone-etcd status), then run env again")
        })
}

/// The error of a node that waited [`AUTH_WAIT`] for etcd's auth.
pub fn auth_off(user: &str) -> Error {
    Error::new(format!(
        "etcd's auth is not on in the zone yet, so {user} can have no gateway password"
    ))
    .fix("wait until zone-etcd status says the policy is enforced, then run env again")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mark's key and value (golden: members of other releases read them).
    #[test]
    fn a_mark_keeps_its_format() {
        assert_eq!(
            format!("{MARKS_PREFIX}photos@nas.example.zone"),
            "zone-etcd/access/passwords/photos@nas.example.zone"
        );
        assert_eq!(super::super::ledger::MARK, "{}");
    }

    #[test]
    fn a_new_password_is_long_random_and_needs_no_quoting() {
        let (a, b) = (new_password(), new_password());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(well_formed(&a) && well_formed(&b));
        for bad in [
            "",
            "short",
            &"a".repeat(42),
            &"a".repeat(129),
            &format!("{}=", "a".repeat(43)),
            &format!("{} ", "a".repeat(43)),
            &format!("{}\n", "a".repeat(43)),
            &format!("{}\"", "a".repeat(43)),
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn asked_again_only_for_a_user_not_made_yet_or_an_old_auth_revision() {
        use tonic::Code;
        let said = |code, text| EtcdError::of_status(code, text);
        assert!(retry(&said(
            Code::FailedPrecondition,
            "etcdserver: user name not found"
        )));
        assert!(retry(&said(
            Code::InvalidArgument,
            "etcdserver: revision of auth store is old"
        )));
        assert!(!retry(&said(
            Code::PermissionDenied,
            "etcdserver: permission denied"
        )));
    }
}
