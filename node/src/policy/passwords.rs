//! The keepers' questions about passwords, and the gateway's marks
//! ([`crate::identities::password`]) as the keepers read and clear them.
//!
//! etcd tells a user without a password from one with a password only while auth is on,
//! and only when asked to authenticate: `ErrNoPasswordUser` (an Unknown status) comes
//! before any comparison, `ErrAuthFailed` (InvalidArgument) after one (a bcrypt
//! comparison: slow, but only for a user that has a password).
//!
//! Invariants: an answer of neither kind fails the round (nothing is assumed); a user
//! found with a password is planted unless this keeper sealed it (`root`'s random one)
//! or a member marked it for the gateway, the marks read after the questions (a member
//! marks a user before it sets the password, so a password being set is never taken for
//! a planted one); the marks are read with their revision, and those written while auth
//! was off are deleted by the keeper that turns it on ([`clear_marks`]).

use std::collections::BTreeSet;

use etcd_client::{Client, Compare, CompareOp, DeleteOptions, Txn, TxnOp};

use super::read::concurrently;
use crate::identities::password::{self, random_password, Answer, MARKS_PREFIX};
use zone_etcd_kit::cluster_api;

/// The users among `users` that have a password, or `None` while auth is off (etcd then
/// answers nothing about passwords). Asked by authenticating each with a random password,
/// many at once.
pub async fn with_password(
    client: &Client,
    users: &[String],
) -> Result<Option<BTreeSet<String>>, String> {
    if users.is_empty() {
        return Ok(None);
    }
    let guess = random_password();
    let answers = concurrently(client, users.to_vec(), |mut c, user| {
        let guess = guess.clone();
        async move { Ok::<_, etcd_client::Error>(password::ask(&mut c, &user, &guess).await) }
    })
    .await?;
    let mut with = BTreeSet::new();
    for (user, answer) in answers {
        let answer = answer.map_err(|e| e.to_string())?;
        match answer? {
            // Taken: guessed (256 random bits matched it).
            Answer::Taken | Answer::Wrong => {
                with.insert(user);
            }
            Answer::NoPassword => {}
            Answer::AuthOff => return Ok(None),
        }
    }
    Ok(Some(with))
}

/// Of `with` (the users found with a password), those whose password the policy did not
/// make: not sealed by this keeper, not marked by a member for the gateway.
pub async fn planted(
    client: &Client,
    with: BTreeSet<String>,
    sealed: &BTreeSet<String>,
) -> Result<BTreeSet<String>, String> {
    if with.is_empty() {
        return Ok(with);
    }
    let gateway = password::marked(client).await?;
    Ok(with
        .into_iter()
        .filter(|u| !sealed.contains(u) && !gateway.contains(u))
        .collect())
}

/// Deletes the gateway's marks: every one (`None`: just before auth goes on, when every
/// client is root and any mark is planted), or those last written at or before revision
/// `up_to` (just after: etcd's revision when it applied `AuthEnable`, so written while
/// auth was off; one written since took etcd's root). How many went.
pub async fn clear_marks(client: &mut Client, up_to: Option<i64>) -> Result<usize, String> {
    let Some(up_to) = up_to else {
        let gone = cluster_api::ask(client, |mut c| async move {
            c.delete(MARKS_PREFIX, Some(DeleteOptions::new().with_prefix()))
                .await
        })
        .await?;
        return Ok(usize::try_from(gone.deleted()).unwrap_or(0));
    };
    let got = cluster_api::get_prefix(client, MARKS_PREFIX).await?;
    let mut gone = 0;
    // etcd's answer has a revision for AuthEnable since 3.0; were it missing (0), every
    // mark read now goes (a gateway password set in these milliseconds would be cleared).
    let up_to = if up_to > 0 {
        up_to
    } else {
        got.header().map_or(i64::MAX, |h| h.revision())
    };
    for kv in got.kvs().iter().filter(|kv| kv.mod_revision() <= up_to) {
        let same = Compare::mod_revision(kv.key(), CompareOp::Equal, kv.mod_revision());
        let txn = Txn::new()
            .when([same])
            .and_then([TxnOp::delete(kv.key(), None)]);
        let done = cluster_api::txn(client, txn).await?;
        gone += usize::from(done.succeeded());
    }
    Ok(gone)
}

/// Whether etcd's auth is on (two calls: the users' names, and one question).
pub async fn auth_on(client: &mut Client) -> Result<bool, String> {
    let users = client
        .user_list()
        .await
        .map_err(|e| format!("user list: {e}"))?;
    let first = &users.users()[..users.users().len().min(1)];
    Ok(with_password(client, first).await?.is_some())
}
