/*
 * crypto-test — unit checks for common/crypto.c and common/merkle.c after
 * every libcrypto call moved into crypto.c: the one-shot SHA-256 without
 * EVP agrees with EVP (at every split of a two-part hash, and around the
 * 64-byte block merkle_leaf() lines up), the Merkle tree hash matches the
 * RFC 6962 test vectors of Certificate Transparency, every inclusion and
 * consistency proof of trees up to 20 leaves verifies (and a changed one
 * does not), the reusable HMAC-SHA256 context gives the HMAC, and an
 * Ed25519 key signs, verifies, rejects a changed message, and survives a
 * PEM round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "merkle.h"
#include "tap.h"
#include "banned.h"

static int hex_is(const uint8_t *d, const char *want)
{
	char hex[SHA256_HEX];
	hex_encode(d, SHA256_LEN, hex);
	return strcmp(hex, want) == 0;
}

static void sha256_checks(void)
{
	uint8_t a[SHA256_LEN], b[SHA256_LEN];
	sha256_raw("abc", 3, a);
	check(hex_is(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410"
		     "ff61f20015ad"), "sha256_raw of \"abc\"");
	uint8_t buf[300];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	int ok = 1;
	for (size_t n = 0; n <= sizeof buf; n += 13) {
		sha256_once(buf, n, a);
		for (size_t k = 0; k <= n; k++) {
			sha256_raw2(buf, k, buf + k, n - k, b);
			ok &= memcmp(a, b, SHA256_LEN) == 0;
		}
	}
	check(ok, "sha256_raw2 at every split equals EVP SHA-256");
	ok = 1;
	size_t lens[] = { 0, 1, 62, 63, 64, 65, 127, 128, 299 };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint8_t pre[301];
		pre[0] = 0;
		memcpy(pre + 1, buf, lens[i]);
		sha256_once(pre, lens[i] + 1, a);
		merkle_leaf(buf, lens[i], b);
		ok &= memcmp(a, b, SHA256_LEN) == 0;
	}
	check(ok, "merkle_leaf is SHA-256 of 0x00 and the line, at block edges");
}

/* The leaves of Certificate Transparency's merkle tree tests. */
static const char *const ct_leaves[] = {
	"", "\x00", "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
	"\x50\x51\x52\x53\x54\x55\x56\x57",
	"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
};
static const size_t ct_len[] = { 0, 1, 1, 2, 2, 4, 8, 16 };

/* Leaf i of a test tree: CT's for i < 8, then made up. */
static void leaf(size_t i, uint8_t out[MERKLE_HASH])
{
	char b[16];
	if (i < 8) {
		merkle_leaf(ct_leaves[i], ct_len[i], out);
		return;
	}
	int n = snprintf(b, sizeof b, "leaf %zu", i);
	merkle_leaf(b, (size_t)n, out);
}

static void subtree(uint64_t lo, uint64_t hi, uint8_t out[MERKLE_HASH])
{
	struct merkle_acc a;
	uint8_t h[MERKLE_HASH];
	merkle_acc_init(&a);
	for (uint64_t i = lo; i < hi; i++) {
		leaf(i, h);
		merkle_acc_push(&a, h);
	}
	merkle_acc_root(&a, out);
}

static void merkle_checks(void)
{
	uint8_t r[MERKLE_HASH];
	subtree(0, 0, r);
	check(hex_is(r, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495"
		     "991b7852b855"), "MTH of no events is SHA-256 of nothing");
	subtree(0, 5, r);
	check(hex_is(r, "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce"
		     "4c13a86264d4"), "MTH of 5 CT test leaves");
	subtree(0, 8, r);
	check(hex_is(r, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe3"
		     "70eff4604328"), "MTH of 8 CT test leaves");
	int inc = 1, con = 1, bad = 1;
	for (uint64_t n = 1; n <= 20; n++) {
		uint8_t root[MERKLE_HASH], old[MERKLE_HASH], lf[MERKLE_HASH];
		uint8_t path[MERKLE_MAX_PATH][MERKLE_HASH];
		struct merkle_range rg[MERKLE_MAX_PATH];
		subtree(0, n, root);
		for (uint64_t m = 0; m < n; m++) {
			int k = merkle_inclusion_ranges(m, n, rg);
			for (int i = 0; i < k; i++)
				subtree(rg[i].lo, rg[i].hi, path[i]);
			leaf(m, lf);
			inc &= merkle_verify_inclusion(m, n, lf,
				(const uint8_t (*)[32])path, (size_t)k, root);
			if (k) {
				path[0][0] ^= 1;
				bad &= !merkle_verify_inclusion(m, n, lf,
					(const uint8_t (*)[32])path,
					(size_t)k, root);
			}
		}
		for (uint64_t m = 1; m <= n; m++) {
			int k = merkle_consistency_ranges(m, n, rg);
			for (int i = 0; i < k; i++)
				subtree(rg[i].lo, rg[i].hi, path[i]);
			subtree(0, m, old);
			con &= merkle_verify_consistency(m, n, old, root,
				(const uint8_t (*)[32])path, (size_t)k);
			if (k) {
				path[k - 1][31] ^= 1;
				bad &= !merkle_verify_consistency(m, n, old,
					root, (const uint8_t (*)[32])path,
					(size_t)k);
			}
		}
	}
	check(inc, "every inclusion proof in trees of 1 to 20 leaves verifies");
	check(con, "every consistency proof in trees of 1 to 20 leaves verifies");
	check(bad, "a proof with one bit changed does not verify");
}

static void hmac_checks(void)
{
	uint8_t key[MLK_KEY_LEN], md[SHA256_LEN], md2[SHA256_LEN];
	for (int i = 0; i < MLK_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	struct mlk_error e = MLK_ERROR_INIT;
	struct crypto_hmac *t = crypto_hmac_new(key, &e);
	check(t != NULL, "crypto_hmac_new");
	if (!t)
		return;
	struct crypto_hmac *h = crypto_hmac_dup(t);
	static const uint8_t seed[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	crypto_hmac2(h, seed, sizeof seed, "patient-42", 10, md);
	check(hex_is(md, "194839ae4dfbebd01dd878172aa6700aa298dc90fea2fc4e14fc"
		     "d5b597e2edf7"), "HMAC-SHA256 of seed and unit");
	crypto_hmac2(h, seed, sizeof seed, "patient-42", 10, md2);
	check(memcmp(md, md2, SHA256_LEN) == 0,
	      "the context is reusable: the same MAC again");
	crypto_hmac_free(h);
	crypto_hmac_free(t);
	crypto_wipe(key, sizeof key);
}

static void ed25519_checks(void)
{
	struct crypto_ed25519 *k = crypto_ed25519_generate();
	check(k != NULL, "an Ed25519 key is made");
	if (!k)
		return;
	uint8_t sig[64], pub[32];
	static const char msg[] = "mlk-audit tree head v1\n7\n";
	check(crypto_ed25519_sign(k, msg, sizeof msg - 1, sig) == 0,
	      "it signs");
	check(crypto_ed25519_verify(k, msg, sizeof msg - 1, sig) == 1,
	      "its signature verifies");
	check(crypto_ed25519_verify(k, msg, sizeof msg - 2, sig) == 0,
	      "not for another message");
	check(crypto_ed25519_public(k, pub) == 0, "its raw public key");
	FILE *f = tmpfile();
	int ok = f && crypto_ed25519_write_pem(f, k, 0) == 0;
	struct crypto_ed25519 *p = NULL;
	if (ok) {
		rewind(f);
		p = crypto_ed25519_read_pem(f, 0);
	}
	uint8_t pub2[32];
	check(p && crypto_ed25519_public(p, pub2) == 0 &&
	      memcmp(pub, pub2, 32) == 0 &&
	      crypto_ed25519_verify(p, msg, sizeof msg - 1, sig) == 1,
	      "the public key read back from PEM verifies");
	if (f) {
		rewind(f);
		check(crypto_ed25519_read_pem(f, 1) == NULL,
		      "a public PEM is no private key");
		fclose(f);
	}
	crypto_ed25519_free(p);
	crypto_ed25519_free(k);
}

int main(void)
{
	(void)mem_read;   /* tap.h's reader: not needed here */
	sha256_checks();
	merkle_checks();
	hmac_checks();
	ed25519_checks();
	return tap_done();
}
