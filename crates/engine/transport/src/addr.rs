//! Where a peer listens: `host:port`, the host an IP address or a DNS name.
//!
//! A name is resolved again each time the peer is dialled, so a node that comes back under
//! a new IP address (a restarted Kubernetes pod keeps its name, not its address) is found
//! again. Names are resolved in-process by hickory-resolver from `/etc/hosts` and
//! `/etc/resolv.conf`, never through libc's `getaddrinfo`: a statically linked binary in an
//! empty container image has no NSS modules for glibc to load.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// A peer's address as configured: an IP address or a DNS name, and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerAddr {
    host: Host,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Host {
    Ip(IpAddr),
    /// Lower case, without a trailing dot.
    Name(String),
}

/// Why a string is not a peer address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddrError {
    /// No `:port` at the end.
    #[error("{0:?} has no port (host:port, [v6]:port)")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} has no valid port (1 to 65535)")]
    BadPort(String),
    /// The host is neither an IP address nor a DNS name (RFC 1123: labels of letters, digits
    /// and inner hyphens, at most 63 bytes each and 253 in all).
    #[error("{0:?} is neither an IP address nor a DNS name")]
    BadHost(String),
}

/// The longest DNS name (RFC 1035, in text form without the trailing dot).
const NAME_MAX: usize = 253;
/// The longest label of a DNS name.
const LABEL_MAX: usize = 63;

impl PeerAddr {
    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address itself when the host is an IP address (no resolving needed).
    #[must_use]
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }

    /// The DNS name, if the host is one.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        match &self.host {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr {
            host: Host::Ip(a.ip()),
            port: a.port(),
        }
    }
}

impl FromStr for PeerAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<PeerAddr, AddrError> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(a.into());
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| AddrError::NoPort(s.to_string()))?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(AddrError::BadPort(s.to_string())),
        };
        if host.parse::<IpAddr>().is_ok() {
            // What parses as an address here is IPv6 without brackets (`::1:7000`): which
            // colon ends the address is a guess, so it is not made.
            return Err(AddrError::BadHost(s.to_string()));
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= LABEL_MAX
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        // A name of digits and dots alone would be read as an address by some resolvers.
        let all_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if name.is_empty() || name.len() > NAME_MAX || all_numeric || !name.split('.').all(label_ok)
        {
            return Err(AddrError::BadHost(s.to_string()));
        }
        Ok(PeerAddr {
            host: Host::Name(name.to_ascii_lowercase()),
            port,
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(ip) => SocketAddr::new(*ip, self.port).fmt(f),
            Host::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

impl serde::Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PeerAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How long an answer about a name is trusted at most: a peer whose pod was rescheduled is
/// found at its new address within this (a DNS server may say minutes).
const ANSWER_TTL_MAX: Duration = Duration::from_secs(5);
/// How long "no such name" is believed: a StatefulSet's names appear as its pods start.
const NO_ANSWER_TTL_MAX: Duration = Duration::from_secs(1);

/// Resolves peers' names in-process: `/etc/hosts` first, then the name servers of
/// `/etc/resolv.conf` (none if it cannot be read: then only the hosts file answers). Both
/// files are read when it is made. Make it inside the Tokio runtime that will use it (its
/// queries run as tasks there).
#[derive(Clone)]
pub struct Resolver(TokioResolver);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

impl Resolver {
    /// The system's configuration, read by hickory-resolver (no libc, no NSS).
    #[must_use]
    pub fn system() -> Resolver {
        let hosts_only = || {
            TokioResolver::builder_with_config(
                ResolverConfig::default(),
                TokioRuntimeProvider::default(),
            )
        };
        let mut builder = TokioResolver::builder_tokio().unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "cannot read /etc/resolv.conf: peer names resolve from /etc/hosts only"
            );
            hosts_only()
        });
        let options = builder.options_mut();
        options.use_hosts_file = ResolveHosts::Always;
        options.positive_max_ttl = Some(ANSWER_TTL_MAX);
        options.negative_max_ttl = Some(NO_ANSWER_TTL_MAX);
        let resolver = builder.build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the DNS resolver did not start: hosts file only");
            let mut builder = hosts_only();
            builder.options_mut().use_hosts_file = ResolveHosts::Always;
            builder
                .build()
                .expect("a resolver with no name servers always builds")
        });
        Resolver(resolver)
    }

    /// The socket addresses `addr` stands for now: itself if it is an IP address, else what
    /// its name resolves to (IPv4 and IPv6, in the resolver's order).
    ///
    /// # Errors
    /// An `io::Error` of kind `NotFound` if the name has no address.
    pub async fn resolve(&self, addr: &PeerAddr) -> std::io::Result<Vec<SocketAddr>> {
        match &addr.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, addr.port)]),
            Host::Name(name) => {
                // As written, like libc: the resolv.conf search list applies to a short name
                // (`synod-1.synod` in Kubernetes), and the hosts file is asked first.
                let found = self.0.lookup_ip(name.as_str()).await.map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("resolving {name}: {e}"),
                    )
                })?;
                Ok(found
                    .iter()
                    .map(|ip| SocketAddr::new(ip, addr.port))
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_parse_and_print_back() {
        for (text, shown) in [
            ("10.0.0.1:7000", "10.0.0.1:7000"),
            ("[::1]:7000", "[::1]:7000"),
            (
                "synod-0.synod.default.svc.cluster.local:7000",
                "synod-0.synod.default.svc.cluster.local:7000",
            ),
            ("Node-1.Example.:7000", "node-1.example:7000"),
            ("localhost:1", "localhost:1"),
        ] {
            let a: PeerAddr = text.parse().unwrap();
            assert_eq!(a.to_string(), shown);
            assert_eq!(shown.parse::<PeerAddr>().unwrap(), a);
        }
        assert!(
            "10.0.0.1:7000"
                .parse::<PeerAddr>()
                .unwrap()
                .socket_addr()
                .is_some()
        );
        assert_eq!(
            "db.example:7000".parse::<PeerAddr>().unwrap().name(),
            Some("db.example")
        );
    }

    #[test]
    fn what_is_not_an_address_is_refused_with_its_reason() {
        let long_label = format!("{}.example:1", "a".repeat(64));
        let long_name = format!("{}:1", ["abcdefghi"; 26].join("."));
        for (text, want) in [
            ("synod-0", AddrError::NoPort("synod-0".into())),
            ("synod-0:", AddrError::BadPort("synod-0:".into())),
            ("synod-0:0", AddrError::BadPort("synod-0:0".into())),
            ("synod-0:65536", AddrError::BadPort("synod-0:65536".into())),
            (":7000", AddrError::BadHost(":7000".into())),
            (
                "-bad.example:7000",
                AddrError::BadHost("-bad.example:7000".into()),
            ),
            ("a..b:7000", AddrError::BadHost("a..b:7000".into())),
            ("a_b:7000", AddrError::BadHost("a_b:7000".into())),
            (
                "300.1.1.1:7000",
                AddrError::BadHost("300.1.1.1:7000".into()),
            ),
            ("::1:7000", AddrError::BadHost("::1:7000".into())),
            (long_label.as_str(), AddrError::BadHost(long_label.clone())),
            (long_name.as_str(), AddrError::BadHost(long_name.clone())),
        ] {
            assert_eq!(text.parse::<PeerAddr>(), Err(want), "{text}");
        }
    }

    #[tokio::test]
    async fn an_ip_address_needs_no_resolver_and_a_name_resolves_from_the_hosts_file() {
        let resolver = Resolver::system();
        let ip: PeerAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(
            resolver.resolve(&ip).await.unwrap(),
            vec!["127.0.0.1:7000".parse().unwrap()]
        );
        // Every Linux machine (and container) has localhost in /etc/hosts.
        let name: PeerAddr = "localhost:7000".parse().unwrap();
        let found = resolver.resolve(&name).await.unwrap();
        assert!(
            found
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7000)
                && !found.is_empty(),
            "{found:?}"
        );
        let missing: PeerAddr = "no-such-node.invalid:7000".parse().unwrap();
        assert!(resolver.resolve(&missing).await.is_err());
    }
}
