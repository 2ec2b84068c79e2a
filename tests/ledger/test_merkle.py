"""The RFC 9162 Merkle tree: the CT test vectors, and every inclusion and consistency proof of trees
up to 20 entries against the recursive reference."""

from __future__ import annotations

import pytest

from ledger import EMPTY_ROOT, ProofError, merkle
from tests.fixtures.ledger import DATA20, flip, ref_mth, ref_path, ref_proof, sha, tree_nodes

# The inputs of the CT test vectors (Go / C++ implementations of RFC 6962).
CT_LEAVES = (
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
)
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {  # (index, size) -> proof
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip
CT_CONSISTENCY = {  # (first, second) -> proof
    (1, 8): CT_INCLUSION[(0, 8)],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip


# --- Merkle tree: known vectors and the reference ----------------------------------------------------


def test_empty_tree_hash():
    assert merkle.EMPTY_ROOT == EMPTY_ROOT == sha(b"") == ref_mth(())
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.Frontier().root() == EMPTY_ROOT


def test_ct_known_roots():
    for n in range(1, 9):
        assert ref_mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
        assert merkle.root_of(merkle.leaf_hash(x) for x in CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert merkle.root_of(map(merkle.leaf_hash, CT_LEAVES)).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_ct_known_proofs():
    got = tree_nodes(list(CT_LEAVES))
    for (i, n), want in CT_INCLUSION.items():
        proof = merkle.assemble(merkle.inclusion_ranges(i, n), got.__getitem__)
        assert [h.hex() for h in proof] == want
        assert [h.hex() for h in ref_path(i, CT_LEAVES[:n])] == want
        assert merkle.verify_inclusion(merkle.leaf_hash(CT_LEAVES[i]), i, n, proof, bytes.fromhex(CT_ROOTS[n - 1]))
    for (m, n), want in CT_CONSISTENCY.items():
        proof = merkle.assemble(merkle.consistency_ranges(m, n), got.__getitem__)
        assert [h.hex() for h in proof] == want
        assert [h.hex() for h in ref_proof(m, CT_LEAVES[:n])] == want
        assert merkle.verify_consistency(m, n, bytes.fromhex(CT_ROOTS[m - 1]), bytes.fromhex(CT_ROOTS[n - 1]), proof)


NODES20 = tree_nodes(DATA20)


def test_frontier_emits_every_complete_subtree():
    f = merkle.Frontier()
    seen: dict[tuple[int, int], bytes] = {}
    for n, d in enumerate(DATA20, start=1):
        for lv, ix, h in f.append(merkle.leaf_hash(d)):
            assert (lv, ix) not in seen
            assert h == ref_mth(tuple(DATA20[ix << lv : (ix + 1) << lv]))
            seen[(lv, ix)] = h
        assert f.root() == ref_mth(tuple(DATA20[:n]))
        assert len(seen) == 2 * n - n.bit_count()
        g = merkle.Frontier.from_nodes(n, seen)  # resuming from stored nodes gives the same edge
        assert g.root() == f.root() and g.hashes() == f.hashes()


@pytest.mark.parametrize("n", range(1, 21))
def test_inclusion_every_index(n):
    d = tuple(DATA20[:n])
    root = ref_mth(d)
    for i in range(n):
        proof = merkle.assemble(merkle.inclusion_ranges(i, n), NODES20.__getitem__)
        assert proof == ref_path(i, d)
        leaf = merkle.leaf_hash(d[i])
        assert merkle.verify_inclusion(leaf, i, n, proof, root)
        for j in range(len(proof)):  # any proof hash altered
            for bit in (0, 7):
                bad = list(proof)
                bad[j] = flip(bad[j], bit)
                assert not merkle.verify_inclusion(leaf, i, n, bad, root)
        if proof:
            assert not merkle.verify_inclusion(leaf, i, n, proof[:-1], root)
        assert not merkle.verify_inclusion(leaf, i, n, proof + [root], root)
        for other in range(n + 2):  # another index
            if other != i:
                assert not merkle.verify_inclusion(leaf, other, n, proof, root)
        for size in range(1, 23):  # another size (with the root a checkpoint of that size would give)
            if size != n and size <= 21:
                assert not merkle.verify_inclusion(leaf, i, size, proof, ref_mth(tuple(DATA20[:size])))
        assert not merkle.verify_inclusion(leaf, i, n, proof, flip(root))  # another root
        assert not merkle.verify_inclusion(flip(leaf), i, n, proof, root)  # another leaf
        if n > 1:
            assert not merkle.verify_inclusion(merkle.leaf_hash(d[(i + 1) % n]), i, n, proof, root)


@pytest.mark.parametrize("n", range(1, 21))
def test_consistency_every_pair(n):
    d = tuple(DATA20[:n])
    root2 = ref_mth(d)
    assert merkle.verify_consistency(0, n, EMPTY_ROOT, root2, [])
    assert not merkle.verify_consistency(0, n, flip(EMPTY_ROOT), root2, [])
    for m in range(1, n + 1):
        root1 = ref_mth(d[:m])
        proof = merkle.assemble(merkle.consistency_ranges(m, n), NODES20.__getitem__)
        assert proof == ref_proof(m, d)
        assert merkle.verify_consistency(m, n, root1, root2, proof)
        assert not merkle.verify_consistency(m, n, flip(root1), root2, proof)
        assert not merkle.verify_consistency(m, n, root1, flip(root2), proof)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j])
            assert not merkle.verify_consistency(m, n, root1, root2, bad)
        if proof:
            assert not merkle.verify_consistency(m, n, root1, root2, proof[:-1])
        assert not merkle.verify_consistency(m, n, root1, root2, proof + [root2])
        for m2 in range(n + 1):  # another first size, with that size's root
            if m2 != m and not (m2 == 0 and not proof):  # (the empty tree is a prefix of any tree)
                assert not merkle.verify_consistency(m2, n, ref_mth(d[:m2]), root2, proof)
                assert not merkle.verify_consistency(m2, n, root1, root2, proof)
        for n2 in range(m, 22):  # another second size, with that size's root
            if n2 != n:
                assert not merkle.verify_consistency(m, n2, root1, ref_mth(tuple(DATA20[:n2])), proof)
        assert not merkle.verify_consistency(n, m, root2, root1, proof) or m == n  # reversed


def test_proof_arguments_are_checked():
    with pytest.raises(ProofError):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ProofError):
        merkle.consistency_ranges(0, 3)
    with pytest.raises(ProofError):
        merkle.consistency_ranges(4, 3)
    assert not merkle.verify_inclusion(b"short", 0, 1, [], b"x" * 32)
    assert not merkle.verify_consistency(2, 1, b"a" * 32, b"b" * 32, [])
