//! RFC 6962 Merkle trees (domain-separated leaf and node hashes, SHA-256), through
//! `ct-merkle`: a block's data hash over its transactions, inclusion proofs for one
//! transaction, and the chain tree over block header hashes with consistency proofs between
//! two heights. Verifiers take only hashes and proof bytes: no trust in the node.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Why a proof did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof's bytes do not fit the tree sizes given.
    #[error("malformed proof")]
    Malformed,
    /// The proof does not lead to the root given.
    #[error("the proof does not match the root")]
    Mismatch,
}

fn hash_of(out: &sha2::digest::Output<Sha256>) -> Hash {
    let mut h = [0; 32];
    h.copy_from_slice(out.as_slice());
    h
}

fn root_hash(root: Hash, size: u64) -> RootHash<Sha256> {
    RootHash::new(root.into(), size)
}

fn tree_of<T: AsRef<[u8]> + Clone>(leaves: &[T]) -> MemoryBackedTree<Sha256, T> {
    let mut tree = MemoryBackedTree::new();
    for leaf in leaves {
        tree.push(leaf.clone());
    }
    tree
}

/// The Merkle tree hash (RFC 6962 MTH) of `leaves`; of no leaves, SHA-256 of nothing.
#[must_use]
pub fn root<T: AsRef<[u8]> + Clone>(leaves: &[T]) -> Hash {
    hash_of(tree_of(leaves).root().as_bytes())
}

/// The audit path proving that `leaves[index]` is in the tree of `leaves`.
///
/// # Panics
/// If `index` is out of range (a caller's bug: the ledger checks it first).
#[must_use]
pub fn prove_inclusion<T: AsRef<[u8]> + Clone>(leaves: &[T], index: usize) -> Vec<u8> {
    tree_of(leaves).prove_inclusion(index).as_bytes().to_vec()
}

/// Checks that `leaf` is at `index` in a tree of `size` leaves with root `root`.
///
/// # Errors
/// [`ProofError`] if it is not (or the proof is malformed).
pub fn verify_inclusion(
    root: Hash,
    size: u64,
    leaf: &[u8],
    index: u64,
    proof: &[u8],
) -> Result<(), ProofError> {
    let proof = InclusionProof::<Sha256>::try_from_bytes(proof.to_vec())
        .map_err(|_| ProofError::Malformed)?;
    root_hash(root, size)
        .verify_inclusion(&leaf, index, &proof)
        .map_err(|e| match e {
            ct_merkle::InclusionVerifError::IncorrectHash => ProofError::Mismatch,
            _ => ProofError::Malformed,
        })
}

/// The proof that the tree of `leaves[..old]` is a prefix of the tree of `leaves`.
///
/// # Panics
/// If `old` is 0 or not below `leaves.len()` (the ledger checks it first).
#[must_use]
pub fn prove_consistency<T: AsRef<[u8]> + Clone>(leaves: &[T], old: usize) -> Vec<u8> {
    tree_of(leaves)
        .prove_consistency(leaves.len() - old)
        .as_bytes()
        .to_vec()
}

/// Checks that the tree (`old_root`, `old_size`) is a prefix of (`new_root`, `new_size`).
///
/// # Errors
/// [`ProofError`] if it is not (or the proof is malformed).
pub fn verify_consistency(
    old_root: Hash,
    old_size: u64,
    new_root: Hash,
    new_size: u64,
    proof: &[u8],
) -> Result<(), ProofError> {
    let proof = ConsistencyProof::<Sha256>::try_from_bytes(proof.to_vec())
        .map_err(|_| ProofError::Malformed)?;
    root_hash(new_root, new_size)
        .verify_consistency(&root_hash(old_root, old_size), &proof)
        .map_err(|e| match e {
            ct_merkle::ConsistencyVerifError::VerificationFailure => ProofError::Mismatch,
            _ => ProofError::Malformed,
        })
}

/// The chain tree's root kept up to date as leaves are appended, in O(log n) hashes and
/// space per leaf: the roots of the perfect subtrees the leaves so far decompose into (RFC
/// 6962's tree is the left-to-right fold of them). [`root`] recomputes the same value from all
/// the leaves; the tests hold the two equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frontier {
    /// (root, number of leaves) of each perfect subtree, largest (leftmost) first.
    subtrees: Vec<(Hash, u64)>,
}

fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    hash_of(&h.finalize())
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    hash_of(&h.finalize())
}

impl Frontier {
    /// Appends a leaf.
    pub fn push(&mut self, leaf: &[u8]) {
        let mut subtree = (leaf_hash(leaf), 1);
        // Two perfect subtrees of the same size merge into one twice as large.
        while let Some(&(left, size)) = self.subtrees.last() {
            if size != subtree.1 {
                break;
            }
            self.subtrees.pop();
            subtree = (node_hash(&left, &subtree.0), 2 * size);
        }
        self.subtrees.push(subtree);
    }

    /// The root of the tree of every leaf pushed so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(mut acc, _)) = subtrees.next() else {
            return hash_of(&Sha256::digest(b""));
        };
        for (left, _) in subtrees {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_frontier_root_is_the_tree_root(leaves in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..40), 0..70,
        )) {
            let mut frontier = Frontier::default();
            prop_assert_eq!(frontier.root(), root::<Vec<u8>>(&[]));
            for n in 1..=leaves.len() {
                frontier.push(&leaves[n - 1]);
                prop_assert_eq!(frontier.root(), root(&leaves[..n]));
            }
        }
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_answers_from_rfc_6962() {
        // The empty tree hashes to SHA-256 of nothing; one empty leaf to SHA-256(0x00).
        let none: [&[u8]; 0] = [];
        assert_eq!(
            hex(&root(&none)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&root(&[b"".as_slice()])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn proofs_verify_and_tampering_is_caught() {
        let leaves: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i; i as usize + 1]).collect();
        let r = root(&leaves);
        for i in 0..leaves.len() {
            let p = prove_inclusion(&leaves, i);
            assert_eq!(verify_inclusion(r, 13, &leaves[i], i as u64, &p), Ok(()));
            assert_eq!(
                verify_inclusion(r, 13, b"forged", i as u64, &p),
                Err(ProofError::Mismatch)
            );
        }
        for old in 1..leaves.len() {
            let p = prove_consistency(&leaves, old);
            let old_root = root(&leaves[..old]);
            assert_eq!(verify_consistency(old_root, old as u64, r, 13, &p), Ok(()));
            let mut forged = leaves[..old].to_vec();
            forged[0] = b"rewritten".to_vec();
            assert!(verify_consistency(root(&forged), old as u64, r, 13, &p).is_err());
        }
    }
}
