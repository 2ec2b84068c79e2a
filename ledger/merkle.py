"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification. Pure functions, no storage.

Hashes are SHA-256. ``leaf_hash(d) = H(0x00 || d)``, ``node_hash(l, r) = H(0x01 || l || r)`` and the
Merkle Tree Hash of the empty tree is ``H("")``. A tree of ``n`` leaves is the RFC's recursive split at
the largest power of two smaller than ``n``; every *complete* (perfect, aligned) subtree in it is
addressed as ``(level, index)``: it covers leaves ``[index * 2**level, (index + 1) * 2**level)``, and
level 0 holds the leaf hashes. Any other range the RFC recursion meets is a right edge ``[a, b)``
whose hash folds the complete subtrees of its binary decomposition from the right; proofs are thus
assembled from complete-subtree hashes alone, which is what the store keeps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]  # (level, index) of a complete subtree


class ProofError(ValueError):
    """A proof cannot be produced for these arguments, or is malformed."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1): the RFC's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


# --- the right edge: complete subtrees of a range, and the compact frontier --------------------------


def subtrees(start: int, end: int) -> list[NodeId]:
    """Complete subtrees covering ``[start, end)``, largest first, for ranges the RFC recursion meets.

    Such a range starts at a multiple of the smallest power of two not below its length, so it splits
    into aligned power-of-two blocks of decreasing size (the binary decomposition of ``end - start``).
    """
    if not 0 <= start < end:
        raise ProofError(f"empty or negative range [{start}, {end})")
    out: list[NodeId] = []
    pos, n = start, end - start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            if pos % (1 << level):
                raise ProofError(f"range [{start}, {end}) is not aligned")
            out.append((level, pos >> level))
            pos += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a right edge from its complete subtrees (largest first): ``H(s1, H(s2, ... sk))``."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


class Frontier:
    """The right edge of a growing tree: one hash per set bit of its size (a "compact range" [0, n)).

    ``append`` adds one leaf hash in O(1) amortized and returns every complete subtree it completes,
    as ``(level, index, hash)``, starting with the leaf itself at level 0. The tree is never rebuilt.
    """

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes, got {len(hashes)}")
        self.size = size
        self._stack = list(hashes)

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        """The complete subtrees whose hashes make up the frontier of a tree of ``size`` leaves."""
        return subtrees(0, size) if size else []

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[NodeId, bytes]) -> Frontier:
        return cls(size, [nodes[n] for n in cls.node_ids(size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        made = [(0, index, leaf)]
        h, level, n = leaf, 0, index
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            level += 1
            n >>= 1
            made.append((level, index >> level, h))
        self._stack.append(h)
        self.size = index + 1
        return made

    def root(self) -> bytes:
        return fold(self._stack)

    def hashes(self) -> list[bytes]:
        return list(self._stack)


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The Merkle Tree Hash of the given leaf hashes, computed streaming."""
    f = Frontier()
    for leaf in leaves:
        f.append(leaf)
    return f.root()


# --- proof generation: which ranges, then their hashes -------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]) as the leaf ranges whose MTHs form the proof, leaf end first."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not within a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            out.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            out.append((start, start + k))
            start, m = start + k, m - k
    out.reverse()  # the recursion appends outermost last: the proof runs from the leaf up
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as leaf ranges, for 0 < m <= n."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    out: list[tuple[int, int]] = []
    start, end, m, b = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not b:
                out.append((start, end))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            out.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            out.append((start, start + k))
            start, m, b = start + k, m - k, False
    out.reverse()
    return out


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[NodeId]:
    """Every complete subtree needed to hash the given ranges: fetch these in one query."""
    return {node for a, b in ranges for node in subtrees(a, b)}


def assemble(ranges: Sequence[tuple[int, int]], get: Callable[[NodeId], bytes]) -> list[bytes]:
    """Turn proof ranges into proof hashes, reading complete-subtree hashes through ``get``."""
    return [fold([get(node) for node in subtrees(a, b)]) for a, b in ranges]


# --- verification, exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 -------------------------------------------


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ProofError("every hash must be 32 bytes")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Run RFC 9162 §2.1.3.2 and return the root it computes; raise ``ProofError`` where it fails."""
    _check_hashes(leaf, *proof)
    if index < 0 or index >= size:  # 1. leaf_index >= tree_size: fail
        raise ProofError(f"index {index} is not within a tree of size {size}")
    fn, sn = index, size - 1  # 2.
    r = leaf  # 3.
    for p in proof:  # 4.
        if sn == 0:  # a.
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # c.
        sn >>= 1
    if sn != 0:  # 5.
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    The size is bound only through the root (as in RFC 9162): take both from one signed checkpoint.
    """
    try:
        _check_hashes(root)
        return hmac.compare_digest(root_from_inclusion_proof(leaf, index, size, proof), root)
    except ProofError:
        return False


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """True iff ``proof`` shows the tree (``second``, ``second_root``) extends (``first``, ``first_root``).

    RFC 9162 §2.1.4.2 covers ``0 < first < second``. Outside it, as other implementations do: equal
    sizes need an empty proof and equal roots; the empty tree (``first == 0``, root ``H("")``) is a
    prefix of every tree and needs an empty proof.

    Like the RFC algorithms, this binds a tree size only through its root: check sizes and roots that
    come together in a signed checkpoint.
    """
    try:
        _check_hashes(first_root, second_root, *proof)
    except ProofError:
        return False
    if first < 0 or second < first:
        return False
    if first == second:
        return not proof and hmac.compare_digest(first_root, second_root)
    if first == 0:
        return not proof and hmac.compare_digest(first_root, EMPTY_ROOT)
    path = list(proof)
    if not path:  # 1.
        return False
    if first & (first - 1) == 0:  # 2. first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # 3.
    while fn & 1:  # 4.
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # 5.
    for c in path[1:]:  # 6.
        if sn == 0:  # a.
            return False
        if fn & 1 or fn == sn:  # b.
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # c.
        sn >>= 1
    # 7.
    return hmac.compare_digest(fr, first_root) and hmac.compare_digest(sr, second_root) and sn == 0
