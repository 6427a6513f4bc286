/*
 * crypto — hashing, keyed hashing, Ed25519 signatures and randomness
 * through OpenSSL libcrypto.
 *
 * The one module that includes OpenSSL headers.  SHA-256 runs through EVP
 * (which uses the CPU's SHA instructions), except sha256_raw*(), the
 * one-shot hashes of the audit log's hot loops: OpenSSL's low-level
 * SHA-256 has no per-call EVP set-up, which is half the cost of hashing a
 * 400-byte event through EVP (measured: 0.35 vs 0.62 us).  Key material
 * lives in caller-owned buffers that the caller wipes with crypto_wipe() as soon as
 * it is no longer needed.  Key files are 32 raw random bytes in a file of
 * mode 0600; crypto_key_load() refuses one that group or others can read.
 */
#ifndef MLK_CRYPTO_H
#define MLK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

#define SHA256_LEN 32
#define SHA256_HEX 65   /* 64 hex digits and a NUL */
#define MLK_KEY_LEN 32

struct sha256_ctx {
	void *md;  /* EVP_MD_CTX */
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *p, size_t n);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* Release without finishing (on error paths). */
void sha256_abort(struct sha256_ctx *c);
void sha256_once(const void *p, size_t n, uint8_t out[SHA256_LEN]);
void sha256_hex_once(const void *p, size_t n, char hex[SHA256_HEX]);

void hex_encode(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* 0 on success; -1 when not exactly 2n hex digits. */
int hex_decode(const char *hex, uint8_t *out, size_t n);

/* SHA-256 of a whole file, streamed; MLK_SYSTEM when unreadable. */
enum mlk_status sha256_file(const char *path, char hex[SHA256_HEX],
			    unsigned long long *size, struct mlk_error *e);

/* Cryptographically strong random bytes. */
enum mlk_status crypto_random(void *p, size_t n, struct mlk_error *e);

/* Create a new key file (O_EXCL, 0600); writes its id ("k-" + 16 hex of
 * the key's SHA-256) into id (at least 19 bytes). */
enum mlk_status crypto_key_create(const char *path, char *id, size_t idlen,
				  struct mlk_error *e);
/* Load a key file; refuses group/other-readable files and wrong sizes. */
enum mlk_status crypto_key_load(const char *path, uint8_t key[MLK_KEY_LEN],
				struct mlk_error *e);
void crypto_key_id(const uint8_t key[MLK_KEY_LEN], char *id, size_t idlen);

void crypto_wipe(void *p, size_t n);

/* SHA-256 of p, and of a then b, without EVP (see above). */
void sha256_raw(const void *p, size_t n, uint8_t out[SHA256_LEN]);
void sha256_raw2(const void *a, size_t an, const void *b, size_t bn,
		 uint8_t out[SHA256_LEN]);

/*
 * HMAC-SHA256 with a key set up once: crypto_hmac_new() keeps a keyed
 * template, crypto_hmac_dup() gives each thread its own context, and
 * crypto_hmac2() MACs a then b with it (re-using the key, no set-up).
 * Both are freed with crypto_hmac_free(); the template holds the key, so
 * free it as soon as the contexts are made and used.
 */
struct crypto_hmac;
struct crypto_hmac *crypto_hmac_new(const uint8_t key[MLK_KEY_LEN],
				    struct mlk_error *e);
struct crypto_hmac *crypto_hmac_dup(const struct crypto_hmac *h);
void crypto_hmac2(struct crypto_hmac *h, const void *a, size_t an,
		  const void *b, size_t bn, uint8_t out[SHA256_LEN]);
void crypto_hmac_free(struct crypto_hmac *h);

/*
 * Ed25519 keys (an opaque OpenSSL key) in PEM: PKCS#8 for a private key,
 * SubjectPublicKeyInfo for a public one.  Read and write through stdio
 * streams the caller opened (and checked the mode of).
 */
struct crypto_ed25519;
struct crypto_ed25519 *crypto_ed25519_generate(void);
/* NULL when the stream holds no Ed25519 key of that kind. */
struct crypto_ed25519 *crypto_ed25519_read_pem(FILE *f,
					       int priv);
/* 0 on success. */
int crypto_ed25519_write_pem(FILE *f,
			     const struct crypto_ed25519 *k, int priv);
/* The raw 32-byte public key; 0 on success. */
int crypto_ed25519_public(const struct crypto_ed25519 *k, uint8_t pub[32]);
/* 0 on success; sig is 64 bytes. */
int crypto_ed25519_sign(const struct crypto_ed25519 *k, const void *msg,
			size_t n, uint8_t sig[64]);
/* 1 when sig is k's signature of msg. */
int crypto_ed25519_verify(const struct crypto_ed25519 *k, const void *msg,
			  size_t n, const uint8_t sig[64]);
void crypto_ed25519_free(struct crypto_ed25519 *k);

/*
 * AES-256-GCM with a 12-byte random nonce: sealed is nonce || ciphertext
 * || 16-byte tag (n + 28 bytes), bound to aad.  aead_open() returns
 * MLK_INTEGRITY when the tag does not verify (wrong key, altered bytes).
 */
#define AEAD_OVERHEAD 28
enum mlk_status aead_seal(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const void *p, size_t n,
			  uint8_t *sealed, struct mlk_error *e);
enum mlk_status aead_open(const uint8_t key[MLK_KEY_LEN], const void *aad,
			  size_t aadn, const uint8_t *sealed, size_t n,
			  uint8_t *plain, struct mlk_error *e);

#endif
