//! Who may do what in a ledger channel or a notary.
//!
//! Clients and nodes are identified by the common name of their certificate from the cluster
//! CA (`client-alice` for `synod certs --clients alice`, `node-1.synod` for node 1): the API
//! serves only mutual TLS, so every caller has one. Each channel and notary carries an
//! [`Access`] in the catalog, agreed like any catalog change, that lists the identities holding
//! each [`Role`]. Roles nest: an administrator may also write and read, a writer may also read.
//!
//! Changing a group's access list, or removing the group, is decided when the change is
//! *applied* (every node checks the caller named in the command against the list as it stands
//! at that point of the log), so two administrators revoking each other cannot both win.
//! Reads and writes are admitted by the node that receives them, against its catalog as
//! applied so far: a grant or revocation takes effect on a node once that node applies it.
//!
//! Not here: checking certificates (rustls does, against the cluster CA) and cluster-wide
//! roles (any identity from the cluster CA may create groups and change key-value groups).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The name that, in an access list, stands for every identity from the cluster CA.
pub const ANYONE: &str = "*";
/// Most identities one role may list (the catalog, copied on every change, holds every list).
pub const IDENTITIES_MAX: usize = 64;
/// Longest identity, bytes.
pub const IDENTITY_MAX: usize = 128;

/// What a caller wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read: a channel's transactions, keys, blocks and proofs.
    Read,
    /// Write: submit transactions to a channel, notarise with a notary.
    Write,
    /// Administer: change the access list, change the members, remove the group.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "administer",
        })
    }
}

/// The identities holding each role in one group. [`ANYONE`] in a list grants that role to
/// every identity from the cluster CA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// May administer (and write, and read).
    pub admins: BTreeSet<String>,
    /// May write (and read).
    pub writers: BTreeSet<String>,
    /// May read.
    pub readers: BTreeSet<String>,
}

impl Access {
    /// Every role for `identity` alone: what a group gets when its creator names no list.
    #[must_use]
    pub fn only(identity: &str) -> Access {
        Access {
            admins: BTreeSet::from([identity.to_string()]),
            ..Access::default()
        }
    }

    /// Every role for every identity: a group created through an API that authenticates no
    /// one (`insecure_plaintext_api`).
    #[must_use]
    pub fn open() -> Access {
        Access::only(ANYONE)
    }

    /// Whether `identity` holds `role` (or a role above it).
    #[must_use]
    pub fn allows(&self, identity: &str, role: Role) -> bool {
        let listed = |set: &BTreeSet<String>| set.contains(identity) || set.contains(ANYONE);
        listed(&self.admins)
            || (role <= Role::Write && listed(&self.writers))
            || (role == Role::Read && listed(&self.readers))
    }

    /// Checks the lists: at least one administrator (a group no one can administer could never
    /// be changed or removed), bounded sizes, no empty or control-character names.
    ///
    /// # Errors
    /// Why the lists are not acceptable.
    pub fn check(&self) -> Result<(), String> {
        if self.admins.is_empty() {
            return Err("an access list needs at least one administrator".into());
        }
        for (role, set) in [
            ("admins", &self.admins),
            ("writers", &self.writers),
            ("readers", &self.readers),
        ] {
            if set.len() > IDENTITIES_MAX {
                return Err(format!(
                    "{role} lists more than {IDENTITIES_MAX} identities"
                ));
            }
            if let Some(bad) = set.iter().find(|name| {
                name.is_empty() || name.len() > IDENTITY_MAX || name.chars().any(char::is_control)
            }) {
                return Err(format!(
                    "{role}: {bad:?} is not an identity (1 to {IDENTITY_MAX} bytes, no control \
                     characters)"
                ));
            }
        }
        Ok(())
    }
}

/// Who asks for a catalog change, as the API authenticated them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caller {
    /// The identity of the caller's certificate.
    Identity(String),
    /// No one: the node serves its API without authentication (`insecure_plaintext_api`). It
    /// holds only the roles granted to [`ANYONE`]: everything in a cluster whose groups were
    /// created unauthenticated (they are open), nothing of a group whose lists name
    /// identities, so one plain-HTTP node cannot read or administer what a TLS client owns.
    Unauthenticated,
}

impl Caller {
    /// Whether this caller holds `role` under `access`.
    #[must_use]
    pub fn holds(&self, access: &Access, role: Role) -> bool {
        match self {
            Caller::Identity(name) => access.allows(name, role),
            Caller::Unauthenticated => access.allows(ANYONE, role),
        }
    }

    /// The access list a group created by this caller gets when none is named.
    #[must_use]
    pub fn default_access(&self) -> Access {
        match self {
            Caller::Identity(name) => Access::only(name),
            Caller::Unauthenticated => Access::open(),
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Identity(name) => write!(f, "{name:?}"),
            Caller::Unauthenticated => f.write_str("an unauthenticated caller"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn roles_nest_and_anyone_means_anyone() {
        let access = Access {
            admins: set(&["client-admin"]),
            writers: set(&["client-alice"]),
            readers: set(&["client-bob"]),
        };
        let holds =
            |who: &str| [Role::Read, Role::Write, Role::Admin].map(|role| access.allows(who, role));
        assert_eq!(holds("client-admin"), [true, true, true]);
        assert_eq!(holds("client-alice"), [true, true, false]);
        assert_eq!(holds("client-bob"), [true, false, false]);
        assert_eq!(holds("client-eve"), [false, false, false]);
        // A name is matched whole: no prefixes, no case folding.
        assert_eq!(holds("client-ali"), [false, false, false]);
        assert_eq!(holds("CLIENT-ALICE"), [false, false, false]);

        let public = Access {
            readers: set(&[ANYONE]),
            ..access.clone()
        };
        assert!(public.allows("client-eve", Role::Read));
        assert!(!public.allows("client-eve", Role::Write));
        assert!(Access::open().allows("client-eve", Role::Admin));
    }

    #[test]
    fn callers_default_to_owning_what_they_create() {
        let alice = Caller::Identity("client-alice".into());
        let access = alice.default_access();
        assert!(alice.holds(&access, Role::Admin));
        assert!(!Caller::Identity("client-bob".into()).holds(&access, Role::Read));
        // No one (a plain-HTTP node) holds nothing of what an identity owns...
        assert!(!Caller::Unauthenticated.holds(&access, Role::Read));
        // ...only what is granted to anyone, which is everything it creates itself.
        let public = Access {
            readers: BTreeSet::from([ANYONE.to_string()]),
            ..access
        };
        assert!(Caller::Unauthenticated.holds(&public, Role::Read));
        assert!(!Caller::Unauthenticated.holds(&public, Role::Write));
        assert_eq!(Caller::Unauthenticated.default_access(), Access::open());
        assert!(Caller::Unauthenticated.holds(&Access::open(), Role::Admin));
    }

    #[test]
    fn bad_lists_are_refused_with_a_reason() {
        assert!(Access::only("client-a").check().is_ok());
        assert!(
            Access::default()
                .check()
                .unwrap_err()
                .contains("administrator")
        );
        let empty_name = Access {
            readers: set(&[""]),
            ..Access::only("client-a")
        };
        assert!(empty_name.check().unwrap_err().contains("readers"));
        let control = Access::only("client-\n");
        assert!(control.check().is_err());
        let many = Access {
            writers: (0..=IDENTITIES_MAX).map(|i| format!("c{i}")).collect(),
            ..Access::only("client-a")
        };
        assert!(many.check().unwrap_err().contains("writers"));
    }
}
