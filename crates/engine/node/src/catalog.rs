//! The cluster catalog: which agreement groups exist, who hosts them, and where each node
//! listens. It is replicated state of the `default` group, changed only by [`AdminCommand`]s
//! agreed in that group, so every node sees the same catalog at the same GSN with no
//! coordinator: creating a group is a write like any other.
//!
//! The catalog decides what a node *should* host; the runtime makes it so (creates the groups a
//! node hosts but lacks, removes tombstoned ones, dials registered addresses). Group ids are
//! assigned at apply time from a counter and never reused, so a removed group's id cannot be
//! confused with a later group of the same name.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use synod_core::{GroupId, ReplicaId};

use crate::access::{Access, Caller, Role};

/// The name of the group every cluster starts with (id 0).
pub const DEFAULT_GROUP_NAME: &str = "default";
/// Longest group name, bytes.
pub const GROUP_NAME_MAX: usize = 64;
/// Most groups one cluster's catalog holds (bounded like every other table): idle groups
/// cost a node nothing but memory (`scripts/bench-idle-groups.sh` hosts 10,000).
pub const GROUPS_MAX: usize = 16_384;

/// A change to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCommand {
    /// Create a group hosted and voted on by `members`, running an application of `kind`.
    CreateGroup {
        /// Its name.
        name: String,
        /// Its first members.
        members: Vec<ReplicaId>,
        /// The kind of application it runs (a name the nodes' application registry knows).
        kind: String,
        /// The application's parameters (opaque to the catalog; the same on every host).
        params: bytes::Bytes,
        /// Who may read, write and administer it (`None`: anyone with a cluster
        /// certificate, as for key-value groups).
        access: Option<Access>,
    },
    /// Remove a group: every node drops its state and log. A group with an access list is
    /// removed only if `by` administers it.
    RemoveGroup {
        /// Its name.
        name: String,
        /// Who asks.
        by: Caller,
    },
    /// Replace a group's access list, if `by` administers it. A group open to every cluster
    /// identity (no access list: the default group unless given one) gets its first list
    /// from a cluster administrator, checked where the request is served: the catalog does
    /// not know the nodes' `cluster_admins`.
    SetAccess {
        /// The group's name.
        name: String,
        /// The new list.
        access: Access,
        /// Who asks.
        by: Caller,
    },
    /// Make `node` host `group` (before it is added as a voting member there). For a group
    /// with an access list, only if `by` administers it.
    HostGroup {
        /// The group's name.
        name: String,
        /// The node.
        node: ReplicaId,
        /// Who asks.
        by: Caller,
    },
    /// Record where `node` listens for peers, so every node can reach it.
    RegisterNode {
        /// The node.
        node: ReplicaId,
        /// Its peer address (`host:port`).
        addr: String,
    },
    /// Stop listing `node` as a host of `group` (after it was removed as a voting member
    /// there). For a group with an access list, only if `by` administers it.
    UnhostGroup {
        /// The group's name.
        name: String,
        /// The node.
        node: ReplicaId,
        /// Who asks.
        by: Caller,
    },
}

/// What applying an [`AdminCommand`] produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOutput {
    /// The group exists now (created by this command, or before with the same members).
    Group(GroupInfo),
    /// The group was removed.
    Removed(GroupInfo),
    /// The node's address is recorded.
    Registered,
    /// Refused; nothing changed.
    Refused(Refusal),
}

/// Why the catalog refused a change (nothing changed). Decided where the change is applied,
/// so every node gives the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// No group has this name.
    #[error("no group named {0:?}")]
    NoSuchGroup(String),
    /// The caller does not administer the group.
    #[error("{by} may not administer {group:?}")]
    NotAdministrator {
        /// Who asked.
        by: Caller,
        /// The group.
        group: String,
    },
    /// The default group stays.
    #[error("the default group cannot be removed")]
    DefaultGroup,
    /// Catalog changes are agreed in the default group only.
    #[error("catalog changes go to the default group")]
    NotTheDefaultGroup,
    /// A group of this name exists with other settings.
    #[error(
        "a group named {name:?} exists with members {:?}",
        members.iter().map(|m| m.0).collect::<Vec<_>>()
    )]
    Exists {
        /// Its name.
        name: String,
        /// Its genesis members.
        members: Vec<ReplicaId>,
    },
    /// Not an acceptable group name, kind, member list or access list (the text says which).
    #[error("{0}")]
    Invalid(String),
    /// A table of the catalog is full.
    #[error("{0}")]
    Full(String),
}

/// One group in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Its id (never reused).
    pub id: GroupId,
    /// Its name.
    pub name: String,
    /// The members it was created with: every host builds its genesis configuration from these.
    pub genesis: Vec<ReplicaId>,
    /// Nodes that host a replica of it (genesis members and nodes added later).
    pub hosts: BTreeSet<ReplicaId>,
    /// GSN (in the default group) of the command that created it.
    pub created_gsn: u64,
    /// The kind of application it runs.
    pub kind: String,
    /// The application's parameters, as given at creation.
    pub params: bytes::Bytes,
    /// Who may do what (`None`: any identity from the cluster CA, as for key-value groups).
    pub access: Option<Access>,
}

impl GroupInfo {
    /// What its application is opened with: the same on every host.
    #[must_use]
    pub fn spec(&self) -> synod_exec::GroupSpec {
        synod_exec::GroupSpec {
            id: self.id,
            name: self.name.clone(),
            created_gsn: self.created_gsn,
            genesis: self.genesis.clone(),
            params: self.params.clone(),
        }
    }
}

/// The catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    groups: BTreeMap<String, GroupInfo>,
    next_id: u32,
    /// Ids of removed groups: hosts that still have them drop them.
    removed: BTreeSet<GroupId>,
    /// Peer addresses registered through the log (nodes added after the cluster was created).
    nodes: BTreeMap<ReplicaId, String>,
}

impl Catalog {
    /// A new cluster's catalog: the default group, running an application of `default_kind`,
    /// hosted by its genesis members.
    #[must_use]
    pub fn new(default_members: &[ReplicaId], default_kind: &str) -> Catalog {
        let default = GroupInfo {
            id: GroupId(0),
            name: DEFAULT_GROUP_NAME.to_string(),
            genesis: default_members.to_vec(),
            hosts: default_members.iter().copied().collect(),
            created_gsn: 0,
            kind: default_kind.to_string(),
            params: bytes::Bytes::new(),
            access: None,
        };
        Catalog {
            groups: BTreeMap::from([(default.name.clone(), default)]),
            next_id: 1,
            removed: BTreeSet::new(),
            nodes: BTreeMap::new(),
        }
    }

    /// The group called `name`.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&GroupInfo> {
        self.groups.get(name)
    }

    /// The group with id `id`.
    #[must_use]
    pub fn group_by_id(&self, id: GroupId) -> Option<&GroupInfo> {
        self.groups.values().find(|g| g.id == id)
    }

    /// Every group, by name.
    pub fn groups(&self) -> impl Iterator<Item = &GroupInfo> {
        self.groups.values()
    }

    /// Whether group `id` was removed.
    #[must_use]
    pub fn is_removed(&self, id: GroupId) -> bool {
        self.removed.contains(&id)
    }

    /// Registered peer addresses.
    #[must_use]
    pub fn nodes(&self) -> &BTreeMap<ReplicaId, String> {
        &self.nodes
    }

    /// Applies `cmd`, agreed at `gsn`. Deterministic: every node gets the same catalog and
    /// output. Invalid commands change nothing and say why.
    pub fn apply(&mut self, gsn: u64, cmd: &AdminCommand) -> AdminOutput {
        match cmd {
            AdminCommand::CreateGroup {
                name,
                members,
                kind,
                params,
                access,
            } => self.create(gsn, name, members, kind, params, access.as_ref()),
            AdminCommand::RemoveGroup { name, by } => {
                if name == DEFAULT_GROUP_NAME {
                    return AdminOutput::Refused(Refusal::DefaultGroup);
                }
                if let Err(why) = self.authorize(name, by) {
                    return AdminOutput::Refused(why);
                }
                match self.groups.remove(name) {
                    Some(g) => {
                        self.removed.insert(g.id);
                        AdminOutput::Removed(g)
                    }
                    None => AdminOutput::Refused(Refusal::NoSuchGroup(name.clone())),
                }
            }
            AdminCommand::SetAccess { name, access, by } => {
                if let Err(why) = self.authorize(name, by) {
                    return AdminOutput::Refused(why);
                }
                if let Err(why) = access.check() {
                    return AdminOutput::Refused(Refusal::Invalid(why));
                }
                match self.groups.get_mut(name) {
                    Some(g) => {
                        g.access = Some(access.clone());
                        AdminOutput::Group(g.clone())
                    }
                    None => AdminOutput::Refused(Refusal::NoSuchGroup(name.clone())),
                }
            }
            AdminCommand::HostGroup { name, node, by } => {
                if let Err(why) = self.authorize(name, by) {
                    return AdminOutput::Refused(why);
                }
                if let Err(why) = self.known(&[*node]) {
                    return AdminOutput::Refused(why);
                }
                match self.groups.get_mut(name) {
                    Some(g) => {
                        g.hosts.insert(*node);
                        AdminOutput::Group(g.clone())
                    }
                    None => AdminOutput::Refused(Refusal::NoSuchGroup(name.clone())),
                }
            }
            AdminCommand::UnhostGroup { name, node, by } => {
                if let Err(why) = self.authorize(name, by) {
                    return AdminOutput::Refused(why);
                }
                match self.groups.get_mut(name) {
                    Some(g) if name != DEFAULT_GROUP_NAME => {
                        g.hosts.remove(node);
                        AdminOutput::Group(g.clone())
                    }
                    Some(_) => AdminOutput::Refused(Refusal::DefaultGroup),
                    None => AdminOutput::Refused(Refusal::NoSuchGroup(name.clone())),
                }
            }
            AdminCommand::RegisterNode { node, addr } => {
                // An IP address or a DNS name with a port. (Builds before names were
                // accepted refuse a name here: register nodes by name only once every node
                // runs a build that accepts them, docs/DEPLOY.md.)
                if let Err(e) = addr.parse::<synod_transport::PeerAddr>() {
                    return AdminOutput::Refused(Refusal::Invalid(e.to_string()));
                }
                if self.nodes.len() >= GROUPS_MAX && !self.nodes.contains_key(node) {
                    return AdminOutput::Refused(Refusal::Full("too many registered nodes".into()));
                }
                self.nodes.insert(*node, addr.clone());
                AdminOutput::Registered
            }
        }
    }

    /// `Err` unless every node of `nodes` belongs to the cluster: hosts the default group or
    /// was registered (`synod member add`). A group of nodes that do not exist could never
    /// reach a quorum.
    fn known(&self, nodes: &[ReplicaId]) -> Result<(), Refusal> {
        let default_hosts = self.groups.get(DEFAULT_GROUP_NAME).map(|g| &g.hosts);
        match nodes
            .iter()
            .find(|n| !self.nodes.contains_key(n) && !default_hosts.is_some_and(|h| h.contains(n)))
        {
            Some(n) => Err(Refusal::Invalid(format!(
                "node {} is not a node of this cluster (add it first: synod member add)",
                n.0
            ))),
            None => Ok(()),
        }
    }

    /// `Err` with the reason if `by` may not administer group `name` (as the catalog stands
    /// now, at this point of the log). Groups without an access list (key-value groups) and
    /// unknown names pass; the caller reports the latter.
    fn authorize(&self, name: &str, by: &Caller) -> Result<(), Refusal> {
        match self.groups.get(name).and_then(|g| g.access.as_ref()) {
            Some(access) if !by.holds(access, Role::Admin) => Err(Refusal::NotAdministrator {
                by: by.clone(),
                group: name.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn create(
        &mut self,
        gsn: u64,
        name: &str,
        members: &[ReplicaId],
        kind: &str,
        params: &bytes::Bytes,
        access: Option<&Access>,
    ) -> AdminOutput {
        if kind.is_empty() || kind.len() > GROUP_NAME_MAX {
            return AdminOutput::Refused(Refusal::Invalid(format!(
                "an application kind is 1 to {GROUP_NAME_MAX} bytes"
            )));
        }
        if let Err(e) = check_group_name(name) {
            return AdminOutput::Refused(Refusal::Invalid(e));
        }
        if let Some(Err(e)) = access.map(Access::check) {
            return AdminOutput::Refused(Refusal::Invalid(e));
        }
        let mut sorted = members.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() {
            return AdminOutput::Refused(Refusal::Invalid(
                "a group needs at least one member".into(),
            ));
        }
        if let Some(existing) = self.groups.get(name) {
            // Creating the same group twice (a retried request) is not an error.
            return if existing.genesis == sorted
                && existing.kind == kind
                && existing.params == params
                && existing.access.as_ref() == access
            {
                AdminOutput::Group(existing.clone())
            } else {
                AdminOutput::Refused(Refusal::Exists {
                    name: name.to_string(),
                    members: existing.genesis.clone(),
                })
            };
        }
        if self.groups.len() >= GROUPS_MAX {
            return AdminOutput::Refused(Refusal::Full(format!(
                "the cluster holds {GROUPS_MAX} groups already"
            )));
        }
        if let Err(why) = self.known(&sorted) {
            return AdminOutput::Refused(why);
        }
        let info = GroupInfo {
            id: GroupId(self.next_id),
            name: name.to_string(),
            genesis: sorted.clone(),
            hosts: sorted.into_iter().collect(),
            created_gsn: gsn,
            kind: kind.to_string(),
            params: params.clone(),
            access: access.cloned(),
        };
        self.next_id += 1;
        self.groups.insert(name.to_string(), info.clone());
        AdminOutput::Group(info)
    }
}

/// Checks a group name: 1 to [`GROUP_NAME_MAX`] bytes of `[a-z0-9_-]`, starting with a letter
/// or digit (safe in URLs, file names and metric labels).
///
/// # Errors
/// Why the name is not acceptable.
pub fn check_group_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > GROUP_NAME_MAX || !starts_ok || !name.chars().all(ok_char) {
        return Err(format!(
            "group names are 1 to {GROUP_NAME_MAX} characters of a-z, 0-9, '-' and '_', \
             starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u16]) -> Vec<ReplicaId> {
        ids.iter().copied().map(ReplicaId).collect()
    }

    fn create(name: &str, members: &[u16]) -> AdminCommand {
        AdminCommand::CreateGroup {
            name: name.into(),
            members: ids(members),
            kind: "kv".into(),
            params: bytes::Bytes::new(),
            access: None,
        }
    }

    #[test]
    fn groups_get_fresh_ids_and_removed_ids_are_never_reused() {
        let mut c = Catalog::new(&ids(&[0, 1, 2]), "kv");
        let AdminOutput::Group(a) = c.apply(5, &create("orders", &[2, 0, 1, 1])) else {
            panic!("created")
        };
        assert_eq!(
            (a.id, a.genesis.as_slice(), a.created_gsn),
            (GroupId(1), &ids(&[0, 1, 2])[..], 5)
        );
        // A retry of the same creation answers with the same group.
        assert_eq!(
            c.apply(6, &create("orders", &[0, 1, 2])),
            AdminOutput::Group(a.clone())
        );
        assert!(matches!(
            c.apply(7, &create("orders", &[0, 1])),
            AdminOutput::Refused(_)
        ));
        let removed = c.apply(
            8,
            &AdminCommand::RemoveGroup {
                name: "orders".into(),
                by: Caller::Unauthenticated,
            },
        );
        assert_eq!(removed, AdminOutput::Removed(a));
        assert!(c.is_removed(GroupId(1)));
        let AdminOutput::Group(b) = c.apply(9, &create("orders", &[0, 1])) else {
            panic!("created again")
        };
        assert_eq!(
            b.id,
            GroupId(2),
            "a new group never takes a removed group's id"
        );
    }

    #[test]
    fn groups_are_hosted_only_by_nodes_of_the_cluster_and_a_removed_member_stops_hosting() {
        let mut c = Catalog::new(&ids(&[0, 1, 2]), "kv");
        let AdminOutput::Refused(Refusal::Invalid(why)) = c.apply(1, &create("ghosts", &[0, 1, 7]))
        else {
            panic!("a group of nodes that do not exist was created")
        };
        assert!(why.contains("node 7"), "{why}");
        let host = |node: u16| AdminCommand::HostGroup {
            name: "orders".into(),
            node: ReplicaId(node),
            by: Caller::Unauthenticated,
        };
        assert!(matches!(
            c.apply(2, &create("orders", &[0, 1])),
            AdminOutput::Group(_)
        ));
        assert!(matches!(
            c.apply(3, &host(65_535)),
            AdminOutput::Refused(Refusal::Invalid(_))
        ));
        // A node added to the cluster (registered) may host; once removed it stops.
        let register = AdminCommand::RegisterNode {
            node: ReplicaId(3),
            addr: "127.0.0.1:7403".into(),
        };
        assert_eq!(c.apply(4, &register), AdminOutput::Registered);
        let AdminOutput::Group(g) = c.apply(5, &host(3)) else {
            panic!("hosted")
        };
        assert!(g.hosts.contains(&ReplicaId(3)));
        let unhost = AdminCommand::UnhostGroup {
            name: "orders".into(),
            node: ReplicaId(3),
            by: Caller::Unauthenticated,
        };
        let AdminOutput::Group(g) = c.apply(6, &unhost) else {
            panic!("unhosted")
        };
        assert_eq!(g.hosts, ids(&[0, 1]).into_iter().collect());
    }

    #[test]
    fn invalid_commands_change_nothing_and_say_why() {
        let mut c = Catalog::new(&ids(&[0, 1, 2]), "kv");
        let before = c.clone();
        for cmd in [
            create("", &[0]),
            create("Upper", &[0]),
            create("-dash", &[0]),
            create(&"x".repeat(GROUP_NAME_MAX + 1), &[0]),
            create("empty", &[]),
            AdminCommand::RemoveGroup {
                name: DEFAULT_GROUP_NAME.into(),
                by: Caller::Unauthenticated,
            },
            AdminCommand::RemoveGroup {
                name: "nothing".into(),
                by: Caller::Unauthenticated,
            },
            AdminCommand::SetAccess {
                name: DEFAULT_GROUP_NAME.into(),
                access: Access::default(),
                by: Caller::Unauthenticated,
            },
            AdminCommand::CreateGroup {
                name: "no-admin".into(),
                members: ids(&[0]),
                kind: "notary".into(),
                params: bytes::Bytes::new(),
                access: Some(Access::default()),
            },
            AdminCommand::CreateGroup {
                name: "no-kind".into(),
                members: ids(&[0]),
                kind: String::new(),
                params: bytes::Bytes::new(),
                access: None,
            },
            AdminCommand::HostGroup {
                name: "nothing".into(),
                node: ReplicaId(3),
                by: Caller::Unauthenticated,
            },
            AdminCommand::RegisterNode {
                node: ReplicaId(3),
                addr: "not an address".into(),
            },
        ] {
            assert!(
                matches!(c.apply(1, &cmd), AdminOutput::Refused(_)),
                "{cmd:?} was accepted"
            );
        }
        assert_eq!(c, before);
    }

    #[test]
    fn hosting_and_registration_are_recorded() {
        let mut c = Catalog::new(&ids(&[0, 1, 2]), "kv");
        c.apply(1, &create("ch", &[0, 1]));
        c.apply(
            2,
            &AdminCommand::RegisterNode {
                node: ReplicaId(3),
                addr: "127.0.0.1:7003".into(),
            },
        );
        c.apply(
            3,
            &AdminCommand::HostGroup {
                name: "ch".into(),
                node: ReplicaId(3),
                by: Caller::Unauthenticated,
            },
        );
        let g = c.group("ch").expect("exists");
        assert_eq!(
            g.hosts,
            ids(&[0, 1, 3]).into_iter().collect::<BTreeSet<_>>()
        );
        assert_eq!(
            g.genesis,
            ids(&[0, 1]),
            "hosting does not change the genesis"
        );
        assert_eq!(
            c.nodes().get(&ReplicaId(3)).map(String::as_str),
            Some("127.0.0.1:7003")
        );
        assert_eq!(
            c.group_by_id(GroupId(1)).map(|g| g.name.as_str()),
            Some("ch")
        );
    }

    #[test]
    fn only_an_administrator_changes_access_or_removes_a_channel() {
        let mut c = Catalog::new(&ids(&[0, 1, 2]), "kv");
        let admin = Caller::Identity("client-admin".into());
        let alice = Caller::Identity("client-alice".into());
        let created = c.apply(
            1,
            &AdminCommand::CreateGroup {
                name: "ch".into(),
                members: ids(&[0, 1, 2]),
                kind: "ledger".into(),
                params: bytes::Bytes::from_static(b"batch rules"),
                access: Some(admin.default_access()),
            },
        );
        assert!(matches!(created, AdminOutput::Group(_)));
        let grant_alice = |by: &Caller| AdminCommand::SetAccess {
            name: "ch".into(),
            access: Access {
                writers: BTreeSet::from(["client-alice".to_string()]),
                ..Access::only("client-admin")
            },
            by: by.clone(),
        };
        let before = c.clone();
        let refused = c.apply(2, &grant_alice(&alice));
        let AdminOutput::Refused(why) = refused else {
            panic!("a non-administrator changed the access list: {refused:?}")
        };
        assert_eq!(
            why,
            Refusal::NotAdministrator {
                by: alice.clone(),
                group: "ch".into()
            }
        );
        assert!(
            why.to_string()
                .contains("client-alice\" may not administer")
        );
        let remove = |by: &Caller| AdminCommand::RemoveGroup {
            name: "ch".into(),
            by: by.clone(),
        };
        assert!(matches!(
            c.apply(3, &remove(&alice)),
            AdminOutput::Refused(_)
        ));
        let host = |by: &Caller| AdminCommand::HostGroup {
            name: "ch".into(),
            node: ReplicaId(2),
            by: by.clone(),
        };
        assert!(matches!(c.apply(3, &host(&alice)), AdminOutput::Refused(_)));
        assert_eq!(c, before);
        assert!(matches!(c.apply(3, &host(&admin)), AdminOutput::Group(_)));

        let AdminOutput::Group(g) = c.apply(4, &grant_alice(&admin)) else {
            panic!("the administrator was refused")
        };
        let access = g.access.expect("a channel has an access list");
        assert!(alice.holds(&access, Role::Write) && !alice.holds(&access, Role::Admin));
        // An administrator cannot leave a channel that no one administers.
        let orphan = AdminCommand::SetAccess {
            name: "ch".into(),
            access: Access::default(),
            by: admin.clone(),
        };
        assert!(matches!(c.apply(5, &orphan), AdminOutput::Refused(_)));
        assert!(matches!(
            c.apply(6, &remove(&admin)),
            AdminOutput::Removed(_)
        ));
        // A group open to everyone (no list) is the cluster administrators', checked where
        // the request is served: the catalog lets any caller remove it or give it a list.
        c.apply(7, &create("kv", &[0]));
        let listed = AdminCommand::SetAccess {
            name: "kv".into(),
            access: Access::only("client-alice"),
            by: alice.clone(),
        };
        assert!(matches!(c.apply(8, &listed), AdminOutput::Group(_)));
        let bob = Caller::Identity("client-bob".into());
        let taken = AdminCommand::SetAccess {
            name: "kv".into(),
            access: Access::only("client-bob"),
            by: bob,
        };
        assert!(matches!(c.apply(9, &taken), AdminOutput::Refused(_)));
        assert!(matches!(
            c.apply(
                10,
                &AdminCommand::RemoveGroup {
                    name: "kv".into(),
                    by: alice.clone()
                }
            ),
            AdminOutput::Removed(_)
        ));
    }
}
